"""Demo data for `make run`: an admin, a project, four pipelines, and a run of each.

Credentials are kept in `<data_dir>/demo.json` (mode 0600) so that restarts reuse them. Each
pipeline's code source is a small local repository made under `<data_dir>/demo-repos`, which
its jobs check out like any other.
"""

import json
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from stageline.api.deps import Services
from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.engine.scheduler import Executor
from stageline.gitrepo import run_git
from stageline.schemas.runs import RunCreate
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.ids import new_id
from stageline.store.queries import identity
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.tables import Pipeline


def _shell_job(identifier: str, name: str, script: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": name,
        "steps": [
            {
                "name": name,
                "task": "official_shell_plugin",
                "identifier": f"STEP_{identifier}",
                "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": script}],
            }
        ],
    }


def _stage(identifier: str, name: str, *jobs: dict[str, Any]) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": name,
        "pre": [{"task": "official_devcloud_autoTrigger", "sequence": 0}],
        "jobs": list(jobs),
    }


DEMO_PIPELINES: dict[str, list[dict[str, Any]]] = {
    "hello-world": [
        _stage(
            "BUILD",
            "Build",
            _shell_job(
                "COMPILE",
                "Compile",
                'echo "building $PIPELINE_NAME #$RUN_NUMBER: $BRANCH at $COMMIT_ID"\n'
                "head -n 1 README.md\nsleep 2\necho done",
            ),
        ),
        _stage(
            "TEST",
            "Test",
            _shell_job(
                "UNIT", "Unit_tests", 'for t in parser engine api; do echo "ok $t"; sleep 1; done'
            ),
        ),
    ],
    "broken-tests": [
        _stage("BUILD", "Build", _shell_job("COMPILE", "Compile", "echo compiled")),
        _stage(
            "TEST", "Test", _shell_job("UNIT", "Unit_tests", 'echo "1 test failed" >&2\nexit 1')
        ),
        _stage("DEPLOY", "Deploy", _shell_job("SHIP", "Ship", "echo never reached")),
    ],
    "nightly-release": [
        _stage(
            "PACKAGE",
            "Package",
            _shell_job(
                "BUNDLE",
                "Bundle",
                'for i in $(seq 1 120); do echo "packaging part $i/120"; sleep 1; done',
            ),
        ),
        _stage("PUBLISH", "Publish", _shell_job("UPLOAD", "Upload", "echo uploaded")),
    ],
    "release-approval": [
        _stage("BUILD", "Build", _shell_job("COMPILE", "Compile", "echo built release")),
        _stage(
            "APPROVE",
            "Approve",
            {
                "identifier": "REVIEW",
                "name": "Release_review",
                "steps": [
                    {
                        "name": "Release_review",
                        "task": "official_devcloud_checkpoint",
                        "identifier": "STEP_REVIEW",
                        "inputs": [
                            {"key": "approvers", "value": "admin"},
                            {"key": "check_strategy", "value": "any"},
                            {"key": "timeout", "value": 3600},
                            {"key": "timeout_strategy", "value": "reject"},
                        ],
                    }
                ],
            },
        ),
        _stage("SHIP", "Ship", _shell_job("DEPLOY", "Deploy", "echo shipped")),
    ],
}


def _demo_repository(settings: Settings, name: str) -> str:
    """A bare repository with one commit on `main`, made once; its path."""
    # Absolute: the server and the agent resolve a repository's path from other directories.
    bare = (settings.data_dir / "demo-repos" / f"{name}.git").resolve()
    if (bare / "HEAD").exists():
        return str(bare)
    with tempfile.TemporaryDirectory(dir=settings.data_dir) as work:
        (Path(work) / "README.md").write_text(f"# {name}\n\nThe Stageline demo's {name}.\n")
        run_git(["init", "--quiet", "--bare", str(bare)])
        tree = ["--git-dir", str(bare), "--work-tree", work]
        run_git([*tree, "add", "--all"])
        who = ["-c", "user.name=Stageline Demo", "-c", "user.email=demo@localhost"]
        run_git([*who, *tree, "commit", "--quiet", "-m", f"{name}: first commit"])
    return str(bare)


def _ensure_demo(settings: Settings, db: Database, now: int) -> dict[str, Any]:
    path = settings.data_dir / "demo.json"
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        with db.reader() as session:
            if identity.read_project(session, project_id=saved["project_id"]) is not None:
                return saved
    password = secrets.token_urlsafe(12)
    with db.reader() as session:
        existing = identity.read_user_by_name(session, name="admin")
    if existing is not None:
        raise SystemExit(
            f"a user 'admin' exists but {path} is missing:"
            f" remove {settings.data_dir} to start afresh"
        )
    user_id = accounts.create_user(
        db, name="admin", password=password, display_name="Demo Admin", now=now
    )
    project_id = accounts.create_project(db, name="demo", now=now)
    accounts.add_member(db, project_id=project_id, user_name="admin", role=Role.ADMIN)
    pair = accounts.create_access_key(db, settings, user_name="admin", now=now)
    pipeline_ids = {}
    with db.writer() as session:
        for name, stages in DEMO_PIPELINES.items():
            pipeline = Pipeline(
                id=new_id(),
                project_id=project_id,
                name=name,
                description=f"demo: {name}",
                is_publish=False,
                manifest_version="3.0",
                definition=json.dumps({"stages": stages}),
                sources=[
                    {
                        "type": "code",
                        "params": {
                            "git_type": "gitlab",
                            "git_url": _demo_repository(settings, name),
                            "default_branch": "main",
                            "codehub_id": "1000001",
                        },
                    }
                ],
                variables=[],
                schedules=[],
                triggers=[],
                creator_id=user_id,
                updater_id=user_id,
                created_at=now,
                updated_at=now,
                run_counter=0,
                deleted=False,
            )
            pipeline_queries.insert_pipeline(session, pipeline)
            pipeline_ids[name] = pipeline.id
    saved = {
        "user": "admin",
        "password": password,
        "user_id": user_id,
        "display_name": "Demo Admin",
        "project_id": project_id,
        "ak": pair.ak,
        "sk": pair.sk,
        "pipelines": pipeline_ids,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(saved, file, indent=2)
    return saved


def _banner(settings: Settings, demo: dict[str, Any]) -> str:
    base = settings.effective_public_base_url
    project = demo["project_id"]
    ids = ", ".join(f'"{pid}"' for pid in demo["pipelines"].values())
    tools = Path(sys.executable).parent  # the virtualenv `make run` made: stageline, pip
    return f"""
================ Stageline demo =================
 dashboard    {base}/   (log in with the login below)
 API          {base}
 login        {demo["user"]} / {demo["password"]}   (account "{settings.account_name}")
 project id   {project}
 access key   AK={demo["ak"]}
              SK={demo["sk"]}
 pipelines    {json.dumps(demo["pipelines"])}

 # the command line (`source {tools}/activate` puts `stageline` on PATH):
 echo '{demo["password"]}' | {tools}/stageline login --server {base} --project {project} --user {demo["user"]}
 {tools}/stageline status
 {tools}/stageline run hello-world --follow
 {tools}/stageline approve release-approval    # it waits PAUSED for a manual review

 # a token, then the latest status of every demo pipeline:
 TOKEN=$(curl -si {base}/v3/auth/tokens -H 'Content-Type: application/json' \\
   -d '{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"{demo["user"]}","password":"{demo["password"]}"}}}}}}}}}}' \\
   | awk 'tolower($1)=="x-subject-token:" {{print $2}}' | tr -d '\\r')
 curl -s -w '\\n' {base}/v5/{project}/api/pipelines/status -H "X-Auth-Token: $TOKEN" \\
   -H 'Content-Type: application/json' -d '[{ids}]'

 # the official SDK:
 {tools}/pip install --quiet huaweicloudsdkcodeartspipeline
 CLOUD_SDK_AK={demo["ak"]} CLOUD_SDK_SK={demo["sk"]} {tools}/python - <<'PY'
import os
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcodeartspipeline.v2 import CodeArtsPipelineClient, BatchShowPipelinesLatestStatusRequest
client = (CodeArtsPipelineClient.new_builder()
          .with_credentials(BasicCredentials(os.environ["CLOUD_SDK_AK"], os.environ["CLOUD_SDK_SK"]))
          .with_endpoints(["{base}"]).build())
print(client.batch_show_pipelines_latest_status(BatchShowPipelinesLatestStatusRequest(
    project_id="{project}", body=[{ids}])))
PY

=================================================
"""


def install_demo(app: FastAPI, settings: Settings, db: Database) -> None:
    """Create the demo data now; once the server runs, start each demo pipeline and print how
    to reach it."""
    services: Services = app.state.services
    demo = _ensure_demo(settings, db, services.clock())

    def start_demo_runs() -> None:
        executor = Executor(user_id=demo["user_id"], display_name=demo["display_name"])
        for pipeline_id in demo["pipelines"].values():
            services.engine.start_run(
                project_id=demo["project_id"],
                pipeline_id=pipeline_id,
                request=RunCreate(),
                executor=executor,
            )
        print(_banner(settings, demo), flush=True)  # noqa: T201 - the demo's whole point

    app.state.after_start.append(start_demo_runs)
