"""`stageline serve` on a fresh data directory keeps what it writes there to its own user: the
directory 0700; the SQLite database, its -wal and -shm files, `secret.key` and artifacts 0600."""

import json
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import definition, shell_job, stage

from .conftest import CLI_TIMEOUT, POLL_TIMEOUT, _stop, _wait_until_healthy, free_port

pytestmark = pytest.mark.slow


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A server with nothing but its data directory: SQLite there, its own secret.key."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINE_")}
    env.update(STAGELINE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "stageline", "serve", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield base_url, env, data_dir
    finally:
        _stop(process)


def admin(env: dict[str, str], *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "stageline", "admin", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, str] = json.loads(result.stdout)
    return parsed


def test_a_fresh_data_dir_is_private_to_the_server(
    fresh: tuple[str, dict[str, str], Path],
) -> None:
    base_url, env, data_dir = fresh
    name, password = f"owner-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    project_id = admin(env, "create-project", f"modes-{secrets.token_hex(3)}")["project_id"]
    admin(env, "create-user", name, "--password", password)
    admin(env, "add-member", project_id, name, "--role", "admin")
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as http:
        user = {"user": {"name": name, "password": password}}
        login = {"auth": {"identity": {"methods": ["password"], "password": user}}}
        token = http.post("/v3/auth/tokens", json=login).headers["X-Subject-Token"]
        headers = {"X-Auth-Token": token}
        job = shell_job("PACK", "echo built > app.txt")
        job["steps"][0]["inputs"].append({"key": "artifacts", "value": "app.txt"})
        body = {"name": "modes", "is_publish": False, "definition": definition(stage("S", job))}
        base = f"/v5/{project_id}/api/pipelines"
        pipeline_id = http.post(base, json=body, headers=headers).json()["pipeline_id"]
        run_id = http.post(f"{base}/{pipeline_id}/run", headers=headers).json()["pipeline_run_id"]
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:  # the built-in agent runs it and uploads the artifact
            detail = http.get(
                f"{base}/{pipeline_id}/pipeline-runs/detail",
                params={"pipeline_run_id": run_id},
                headers=headers,
            ).json()
            if detail["status"] not in {"RUNNING", "QUEUED"} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert detail["status"] == "COMPLETED", detail

    assert mode(data_dir) == 0o700
    database = data_dir / "stageline.db"
    for path in (database, data_dir / "stageline.db-wal", data_dir / "stageline.db-shm"):
        assert path.exists(), path  # the server is up: WAL mode keeps both beside the database
        assert mode(path) == 0o600, (path, oct(mode(path)))
    assert mode(data_dir / "secret.key") == 0o600
    artifacts = data_dir / "artifacts"
    stored = [p for p in artifacts.rglob("*") if p.is_file()]
    assert stored, "the artifact was not stored"
    assert all(mode(p) == 0o600 for p in stored), [(p, oct(mode(p))) for p in stored]
    assert all(mode(p) == 0o700 for p in [artifacts, *artifacts.rglob("*")] if p.is_dir())
