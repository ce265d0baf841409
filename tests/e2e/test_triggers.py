"""Git events and schedules start runs that build the commit they name, on a real server with
its own agent.

A bare repository on disk is the pipeline's code source. Commits, a tag and a branch are pushed
to it with the real `git`; then the deliveries a forge would send for them (bodies of the
recorded GitLab, GitHub and Gitea fixtures, pointed at those commits, signed as each forge signs)
go to the trigger's callback URL. Each run's step prints a file of its checkout, so the log
shows which commit was built; batch status shows what started the run and on which ref, and
run detail what its code source built.

Each trigger type has its run here from each host: Push, CreateTag and MR from GitLab, GitHub
and Gitea; Issue and Note (which name no commit, so build the default branch's head, except a
GitLab comment on a merge request, which names its head) from each host too.
"""

import copy
import hashlib
import hmac
import json
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import definition, shell_job, stage

from .conftest import Tenant

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
ZEROS = "0" * 40
STEP = 'echo "built $(cat version.txt) at $(git rev-parse HEAD) on ${BRANCH}${TAG}"'


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=E2E", "-c", "user.email=e2e@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


@dataclass
class Repository:
    """A bare repository (what the pipeline builds) and a clone to commit and push from."""

    bare: Path
    work: Path

    def commit(self, version: str, *, branch: str = "main") -> str:
        """Commit `version.txt` = `version` on `branch` and push it; the new commit's ID."""
        git(self.work, "checkout", "-q", "-B", branch)
        (self.work / "version.txt").write_text(version + "\n")
        git(self.work, "add", "version.txt")
        git(self.work, "commit", "-q", "-m", f"version {version}")
        git(self.work, "push", "-q", "origin", branch)
        return git(self.work, "rev-parse", "HEAD")

    def tag(self, name: str) -> str:
        git(self.work, "tag", name)
        git(self.work, "push", "-q", "origin", name)
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    bare = tmp_path / "app.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    repo = Repository(bare, work)
    repo.commit("1.0")
    return repo


def fixture(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = json.loads((FIXTURES / f"{name}.json").read_bytes())
    headers = json.loads((FIXTURES / f"{name}.headers.json").read_text())
    return body, headers


def deliver(
    tenant: Tenant, callback_url: str, secret: str, name: str, edit: Callable[[Any], None]
) -> httpx.Response:
    """POST fixture `name`, changed by `edit`, to the callback URL as its forge would: with a
    fresh delivery ID, and the secret or signatures its headers ask for."""
    template, headers = fixture(name)
    body = copy.deepcopy(template)
    edit(body)
    raw = json.dumps(body).encode()
    sha256 = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    sha1 = hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
    delivery = str(secrets.token_hex(16))
    sent = {}
    for key, value in headers.items():
        value = value.replace("{{SECRET}}", secret)
        value = value.replace("{{HMAC_SHA256_HEX}}", sha256).replace("{{HMAC_SHA1_HEX}}", sha1)
        if key.lower() in {"idempotency-key", "x-gitlab-event-uuid"} or key.lower().endswith(
            "-delivery"
        ):
            value = delivery
        sent[key] = value
    path = httpx.URL(callback_url).path
    return httpx.post(
        f"{tenant.base_url}{path}", content=raw, headers=sent, trust_env=False, timeout=30
    )


@dataclass
class TriggeredPipeline:
    pipeline_id: str
    callback_url: str
    secret: str


def pipeline_with_trigger(
    tenant: Tenant,
    repo: Repository,
    git_type: str,
    *,
    schedules: list[dict[str, Any]] | None = None,
) -> TriggeredPipeline:
    url = str(repo.bare)
    body = {
        "name": f"e2e-triggers-{git_type}-{secrets.token_hex(3)}",
        "is_publish": False,
        "definition": definition(stage("BUILD", shell_job("PRINT", STEP))),
        "sources": [
            {
                "type": "code",
                "params": {"git_type": git_type, "git_url": url, "default_branch": "main"},
            }
        ],
        "triggers": [
            {
                "git_url": url,
                "git_type": git_type,
                "events": [
                    {"type": kind, "enable": True}
                    for kind in ("push", "tag_push", "merge_request", "issue", "note")
                ],
            }
        ],
        "schedules": schedules or [],
    }
    created = tenant.raw("POST", f"/v5/{tenant.project_id}/api/pipelines", json_body=body)
    assert created.status_code == 200, created.text
    pipeline_id = created.json()["pipeline_id"]
    detail = tenant.raw("GET", f"/v5/{tenant.project_id}/api/pipelines/{pipeline_id}")
    assert detail.status_code == 200, detail.text
    trigger = detail.json()["triggers"][0]
    assert trigger["callback_url"].startswith(tenant.server.public_base_url + "/webhooks/")
    return TriggeredPipeline(pipeline_id, trigger["callback_url"], trigger["security_token"])


def started(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["result"] == "started", answer
    run_id: str = answer["pipeline_run_id"]
    return run_id


def step_log(tenant: Tenant, pipeline_id: str, run_id: str) -> str:
    base = f"/v5/{tenant.project_id}/api/pipelines/{pipeline_id}"
    detail = tenant.raw("GET", f"{base}/pipeline-runs/detail?pipeline_run_id={run_id}").json()
    job = detail["stages"][0]["jobs"][0]
    step = job["steps"][0]
    log = tenant.raw(
        "POST",
        f"{base}/pipeline-runs/{run_id}/jobs/{job['id']}/steps/{step['id']}/logs",
        json_body={"start_offset": 0, "end_offset": 0, "limit": 500, "sort": "asc"},
    )
    assert log.status_code == 200, log.text
    text: str = log.json()["log"]
    return text


SOURCE_KEYS = ("build_type", "target_branch", "tag", "commit_id", "message", "event_type",
               "source_branch", "merge_id")  # fmt: skip
"""What run detail shows of a run's code source, in `sources[].params.build_params`."""


def build_params(tenant: Tenant, pipeline_id: str, run_id: str) -> dict[str, Any]:
    """The finished run's `trigger_type` and `build_params` in batch status, checked against
    what its run detail says its code source built."""
    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    status = tenant.raw(
        "POST", f"/v5/{tenant.project_id}/api/pipelines/status", json_body=[pipeline_id]
    ).json()[0]
    assert status["pipeline_run_id"] == latest.pipeline_run_id
    base = f"/v5/{tenant.project_id}/api/pipelines/{pipeline_id}"
    detail = tenant.raw("GET", f"{base}/pipeline-runs/detail?pipeline_run_id={run_id}").json()
    assert detail["trigger_type"] == status["trigger_type"]
    built = detail["sources"][0]["params"]["build_params"]
    assert built == {key: status["build_params"][key] for key in SOURCE_KEYS}
    params: dict[str, Any] = {"trigger_type": status["trigger_type"], **status["build_params"]}
    return params


def gitlab_push(ref: str, sha: str) -> Callable[[Any], None]:
    def edit(body: Any) -> None:
        body.update(ref=ref, before=ZEROS if ref.startswith("refs/tags/") else body["before"])
        body.update(after=sha, checkout_sha=sha)
        body["commits"] = [{**body["commits"][-1], "id": sha, "message": f"commit {sha}"}]

    return edit


@pytest.mark.slow
def test_gitlab_push_tag_and_merge_request_build_the_commits_they_name(
    tenant: Tenant, repository: Repository
) -> None:
    pipeline = pipeline_with_trigger(tenant, repository, "gitlab")
    hook = (tenant, pipeline.callback_url, pipeline.secret)

    pushed = repository.commit("2.0")
    run_id = started(deliver(*hook, "gitlab/push", gitlab_push("refs/heads/main", pushed)))
    repository.commit("2.1")  # the branch moves on: the run still builds the pushed commit
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert params["trigger_type"] == "Push"
    assert params["event_type"] == "Push"
    assert params["commit_id"] == pushed
    assert params["target_branch"] == "main"
    assert f"built 2.0 at {pushed} on main" in step_log(tenant, pipeline.pipeline_id, run_id)

    tagged = repository.tag("v2.1")
    run_id = started(deliver(*hook, "gitlab/tag_push", gitlab_push("refs/tags/v2.1", tagged)))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert (params["trigger_type"], params["tag"], params["commit_id"]) == (
        "CreateTag",
        "v2.1",
        tagged,
    )
    assert f"built 2.1 at {tagged} on v2.1" in step_log(tenant, pipeline.pipeline_id, run_id)

    feature = repository.commit("3.0-rc", branch="feature/next")

    def merge_request(body: Any) -> None:
        attributes = body["object_attributes"]
        attributes.update(source_branch="feature/next", target_branch="main", iid=42)
        attributes["last_commit"] = {**attributes["last_commit"], "id": feature}

    run_id = started(deliver(*hook, "gitlab/merge_request_open", merge_request))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert params["trigger_type"] == "MR"
    assert (params["source_branch"], params["target_branch"]) == ("feature/next", "main")
    assert (params["merge_id"], params["action"], params["commit_id"]) == ("42", "open", feature)
    assert f"built 3.0-rc at {feature}" in step_log(tenant, pipeline.pipeline_id, run_id)


@pytest.mark.slow
@pytest.mark.parametrize("host", ["github", "gitea"])
def test_a_signed_push_tag_and_pull_request_from_github_or_gitea_build_their_commits(
    tenant: Tenant, repository: Repository, host: str
) -> None:
    pipeline = pipeline_with_trigger(tenant, repository, host)
    hook = (tenant, pipeline.callback_url, pipeline.secret)
    pushed = repository.commit(f"4.0-{host}")

    def push(body: Any) -> None:
        body.update(ref="refs/heads/main", after=pushed)
        if body.get("head_commit"):
            body["head_commit"] = {**body["head_commit"], "id": pushed, "message": "for e2e"}
        body["commits"] = [{**(body.get("commits") or [{}])[-1], "id": pushed}]

    forged = deliver(tenant, pipeline.callback_url, "not-the-secret", f"{host}/push", push)
    assert forged.status_code == 401, forged.text
    run_id = started(deliver(*hook, f"{host}/push", push))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert (params["trigger_type"], params["commit_id"]) == ("Push", pushed)
    assert (params["source_branch"], params["target_branch"]) == ("main", "main")
    assert f"built 4.0-{host} at {pushed} on main" in step_log(tenant, pipeline.pipeline_id, run_id)

    tag = f"v4-{host}"
    tagged = repository.tag(tag)

    def new_tag(body: Any) -> None:
        if host == "github":  # a push of refs/tags/<tag>
            body.update(ref=f"refs/tags/{tag}", before=ZEROS, after=tagged, created=True)
            body["head_commit"] = {**body["head_commit"], "id": tagged}
        else:  # Gitea's create event, which names the commit
            body.update(ref=tag, ref_type="tag", sha=tagged)

    fixture_name = "github/push_tag" if host == "github" else "gitea/create_tag"
    run_id = started(deliver(*hook, fixture_name, new_tag))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert (params["trigger_type"], params["tag"], params["commit_id"]) == (
        "CreateTag",
        tag,
        tagged,
    )
    log = step_log(tenant, pipeline.pipeline_id, run_id)
    # GitHub's tag push also names the branch it was pushed from (BRANCH=main)
    assert f"built 4.0-{host} at {tagged} on {'main' if host == 'github' else ''}{tag}" in log

    feature = repository.commit(f"5.0-{host}-rc", branch=f"feature/{host}")

    def pull_request(body: Any) -> None:
        body.update(action="opened", number=17)
        pr = body["pull_request"]
        pr.update(number=17, merged=False)
        pr["head"] = {**pr["head"], "ref": f"feature/{host}", "sha": feature}
        pr["base"] = {**pr["base"], "ref": "main"}

    run_id = started(deliver(*hook, f"{host}/pull_request_opened", pull_request))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert params["trigger_type"] == "MR"
    assert (params["source_branch"], params["target_branch"]) == (f"feature/{host}", "main")
    assert (params["merge_id"], params["action"], params["commit_id"]) == ("17", "open", feature)
    assert f"built 5.0-{host}-rc at {feature}" in step_log(tenant, pipeline.pipeline_id, run_id)


ISSUES_AND_NOTES = {
    "gitlab": ("gitlab/issue", "project", "gitlab/note_merge_request"),
    "github": ("github/issues_opened", "repository", "github/issue_comment_created"),
    "gitea": ("gitea/issues_opened", "repository", "gitea/issue_comment_created"),
}


@pytest.mark.slow
@pytest.mark.parametrize("host", list(ISSUES_AND_NOTES))
def test_an_issue_and_a_comment_start_runs_of_the_commit_they_concern(
    tenant: Tenant, repository: Repository, host: str
) -> None:
    """An issue and a comment name no commit: their runs build the default branch's head, and
    their message is the issue's title or the comment. A GitLab comment on a merge request
    names the request's head commit, which its run builds."""
    issue_name, repository_key, note_name = ISSUES_AND_NOTES[host]
    pipeline = pipeline_with_trigger(tenant, repository, host)
    hook = (tenant, pipeline.callback_url, pipeline.secret)
    head = repository.commit(f"6.0-{host}")

    def on_main(body: Any) -> None:
        body[repository_key]["default_branch"] = "main"

    run_id = started(deliver(*hook, issue_name, on_main))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert (params["trigger_type"], params["event_type"]) == ("Issue", "Issue")
    assert (params["commit_id"], params["target_branch"]) == (head, "main")
    title = json.loads((FIXTURES / f"{issue_name}.json").read_bytes())
    title = title["object_attributes" if host == "gitlab" else "issue"]["title"]
    assert params["message"] == title
    assert f"built 6.0-{host} at {head} on main" in step_log(tenant, pipeline.pipeline_id, run_id)

    built = head
    if host == "gitlab":
        built = repository.commit(f"6.1-{host}-rc", branch="feature")

    def comment(body: Any) -> None:
        on_main(body)
        if host == "gitlab":
            request = body["merge_request"]
            request.update(source_branch="feature", target_branch="main", iid=5)
            request["last_commit"] = {**request["last_commit"], "id": built}

    run_id = started(deliver(*hook, note_name, comment))
    params = build_params(tenant, pipeline.pipeline_id, run_id)
    assert (params["trigger_type"], params["event_type"]) == ("Note", "Note")
    assert (params["commit_id"], params["target_branch"]) == (built, "main")
    note = json.loads((FIXTURES / f"{note_name}.json").read_bytes())
    text = note["object_attributes"]["note"] if host == "gitlab" else note["comment"]["body"]
    assert params["message"] == text
    if host == "gitlab":
        assert (params["merge_id"], params["source_branch"]) == ("5", "feature")
    version = f"6.1-{host}-rc" if host == "gitlab" else f"6.0-{host}"
    assert f"built {version} at {built}" in step_log(tenant, pipeline.pipeline_id, run_id)


@pytest.mark.slow
def test_a_due_schedule_builds_the_head_of_the_default_branch(
    tenant: Tenant, repository: Repository
) -> None:
    """An interval schedule that started 58 s ago fires its next slot in about 2 s (or, on a
    machine so slow that saving the pipeline took longer, the one after it)."""
    head = repository.commit("5.0")
    started_at = int(time.time() * 1000) - 58_000
    schedule = {
        "type": "fixed",
        "name": "every-minute",
        "enable": True,
        "start_time": started_at,
        "interval_time": 1,
        "interval_unit": "minute",
    }
    pipeline = pipeline_with_trigger(tenant, repository, "gitlab", schedules=[schedule])
    latest = tenant.wait_latest(
        pipeline.pipeline_id, lambda item: item.status == "COMPLETED", timeout=90
    )
    params = build_params(tenant, pipeline.pipeline_id, latest.pipeline_run_id)
    assert params["trigger_type"] == "Scheduler"
    assert (params["commit_id"], params["target_branch"]) == (head, "main")
    assert f"built 5.0 at {head} on main" in step_log(
        tenant, pipeline.pipeline_id, latest.pipeline_run_id
    )
