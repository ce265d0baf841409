"""`make fuzz`: Schemathesis against the /openapi.json of a real `stageline serve` on loopback.

The server runs without a build agent (the fuzzer creates pipelines with any script it likes:
nothing may run them), on a fresh database: a new SQLite file, or a new PostgreSQL database on
the server of `--postgres-admin-url`, dropped afterwards. Before the fuzzer starts, a project
with an admin, a pipeline and a run of it are created; every path parameter names them, and
DELETE is left out, so the fuzzer keeps a live target instead of deleting it and then seeing
only 404s. The run is bounded by `--max-time`; the exit status is the fuzzer's (0: no server
error and no answer that contradicts the document).

    python -m tools.fuzz [--postgres-admin-url URL] [--max-time SECONDS]   # from the repository
"""

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database
from tests.databases import fresh_postgres

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "allow_header_conformance",
    ]
)
"""What counts as a failure: any 5xx, and any answer the document does not describe; a request
the schema forbids that is not refused; a method a path does not have that is not a 405 with
`Allow`. Not `positive_data_acceptance`: a schema-valid body may still be refused for what it
says (a definition that is no pipeline, an ID that names nothing)."""
DEFINITION = json.dumps(
    {
        "stages": [
            {
                "name": "build",
                "identifier": "BUILD",
                "jobs": [
                    {
                        "name": "compile",
                        "identifier": "COMPILE",
                        "steps": [
                            {
                                "name": "compile",
                                "task": "official_shell_plugin",
                                "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "true"}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
)


@contextlib.contextmanager
def fresh_database(postgres_admin_url: str | None, directory: Path) -> Iterator[str]:
    if postgres_admin_url is None:
        yield f"sqlite:///{directory / 'fuzz.db'}"
        return
    with fresh_postgres(postgres_admin_url) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(database_url: str, data_dir: Path, secret: str) -> Iterator[str]:
    """`stageline serve --no-agent` on a free loopback port, until the block ends."""
    port = free_port()
    env = {**os.environ, "STAGELINE_DATA_DIR": str(data_dir), "STAGELINE_SECRET_KEY": secret}
    command = [sys.executable, "-m", "stageline", "serve", "--no-agent", "--port", str(port)]
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [*command, "--database-url", database_url], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {data_dir / 'serve.log'}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def target(base: str, db: Database, settings: Settings) -> tuple[str, dict[str, str]]:
    """A project with an admin, a pipeline and a run: the admin's token and the IDs."""
    now = system_clock()
    project_id = accounts.create_project(db, name="fuzz", now=now)
    password = secrets.token_urlsafe(16)
    accounts.create_user(db, name="fuzz-admin", password=password, now=now)
    accounts.add_member(db, project_id=project_id, user_name="fuzz-admin", role=Role.ADMIN)
    with httpx.Client(base_url=base, timeout=30) as http:
        user = {"name": "fuzz-admin", "password": password}
        identity = {"methods": ["password"], "password": {"user": user}}
        login = http.post("/v3/auth/tokens", json={"auth": {"identity": identity}})
        login.raise_for_status()
        headers = {"X-Auth-Token": login.headers["X-Subject-Token"]}
        api = f"/v5/{project_id}/api/pipelines"
        body = {"name": "fuzz-target", "is_publish": False, "definition": DEFINITION}
        created = http.post(api, json=body, headers=headers)
        created.raise_for_status()
        pipeline_id: str = created.json()["pipeline_id"]
        started = http.post(f"{api}/{pipeline_id}/run", json={}, headers=headers)
        started.raise_for_status()
        run_id: str = started.json()["pipeline_run_id"]
        detail = http.get(
            f"{api}/{pipeline_id}/pipeline-runs/detail",
            params={"pipeline_run_id": run_id},
            headers=headers,
        ).json()
    job: dict[str, Any] = detail["stages"][0]["jobs"][0]
    ids = {
        "project_id": project_id,
        "pipeline_id": pipeline_id,
        "pipeline_run_id": run_id,
        "run_id": run_id,
        "job_run_id": job["id"],
        "step_run_id": job["steps"][0]["id"],
    }
    return headers["X-Auth-Token"], ids


def fuzz(base: str, token: str, ids: dict[str, str], work: Path, max_time: int) -> int:
    config = work / "schemathesis.toml"
    config.write_text(
        "[parameters]\n" + "".join(f'"path.{name}" = "{value}"\n' for name, value in ids.items())
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"X-Auth-Token: {token}",
        "--exclude-method",
        "DELETE",
        "--checks",
        CHECKS,
        "--max-time",
        str(max_time),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
    ]
    return subprocess.run(command, cwd=work, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-admin-url", help="fuzz on a new database of this server")
    parser.add_argument("--max-time", type=int, default=180, help="seconds of fuzzing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stageline-fuzz-") as tmp:
        work = Path(tmp)
        secret = secrets.token_hex(32)
        with fresh_database(args.postgres_admin_url, work) as url:
            settings = Settings(database_url=url, data_dir=work, secret_key=secret)
            db = Database(url)
            migrate.upgrade(db.engine)
            try:
                with server(url, work, secret) as base:
                    token, ids = target(base, db, settings)
                    print(f"fuzzing {base} ({make_url(url).get_backend_name()}): {ids}")
                    status = fuzz(base, token, ids, work, args.max_time)
                    if status != 0:  # the server's own words, without its access log
                        lines = (work / "serve.log").read_text().splitlines()
                        print("\n".join(ln for ln in lines if not ln.startswith("INFO:"))[-8000:])
                    return status
            finally:
                db.dispose()


if __name__ == "__main__":
    sys.exit(main())
