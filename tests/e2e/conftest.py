"""End-to-end fixtures: a real `stageline serve` subprocess, bootstrapped through the admin CLI.

Everything here talks to the server the way a user would: the CLI as a subprocess, the official
Huawei Cloud SDK (AK/SK-signed) and plain HTTP (IAM-style tokens). The server and the CLI share
the master secret `TEST_SECRET`, so the SKs the CLI prints are the ones the server derives.

Each database kind of the `database_url` parametrization gets its own server and database.
"""

import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcodeartspipeline.v2 import (
    BatchShowPipelinesLatestStatusRequest,
    CodeArtsPipelineClient,
    CodeSource,
    CodeSourceParams,
    CreatePipelineNewRequest,
    PipelineDTO,
    PipelineLatestRun,
    RunPipelineDTO,
    RunPipelineRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig

from tests.conftest import TEST_SECRET
from tests.databases import sibling_database
from tests.gitrepos import GitRepo

STARTUP_TIMEOUT = 30.0
"""Seconds the server gets to answer GET /health with 200."""
POLL_TIMEOUT = 60.0
"""Upper bound of every wait for a run to reach a status (a bound, not a timing check)."""
POLL_INTERVAL = 0.05
CLI_TIMEOUT = 60.0
DISPLAY_TIMEZONE = "UTC+08:00"
ROLES = ("admin", "developer", "viewer")
"""Project roles given through `add-member`; the fourth user, the outsider, gets none."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running `python -m stageline serve` process and how to reach it."""

    base_url: str
    public_base_url: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str, json_output: bool = True) -> subprocess.CompletedProcess[str]:
        """`python -m stageline admin ARGS --database-url URL [--json]`, with the server's env."""
        command = [sys.executable, "-m", "stageline", "admin", *args]
        command += ["--database-url", self.database_url]
        if json_output:
            command.append("--json")
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )

    def cli_json(self, *args: str) -> dict[str, Any]:
        """Run an admin command that must succeed and return its parsed --json output."""
        result = self.cli(*args)
        assert result.returncode == 0, f"{args} exited {result.returncode}: {result.stderr}"
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed


def _server_env(data_dir: Path, public_base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINE_")}
    env.update(
        STAGELINE_SECRET_KEY=TEST_SECRET,
        STAGELINE_DATA_DIR=str(data_dir),
        STAGELINE_PUBLIC_BASE_URL=public_base_url,
        STAGELINE_DISPLAY_TIMEZONE=DISPLAY_TIMEZONE,
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no answer yet"
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"stageline serve exited with {process.returncode} before it was healthy:\n"
                    + log_path.read_text(errors="replace")[-5000:]
                )
            try:
                response = http.get(f"{base_url}/health")
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as error:
                last_error = repr(error)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"stageline serve not healthy after {STARTUP_TIMEOUT} s ({last_error}):\n"
                    + log_path.read_text(errors="replace")[-5000:]
                )
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on a free loopback port, over a database of its own of this kind.

    Its own database, because a server marks the runs it finds in flight at start-up and at
    shutdown FAILED: it must not see the runs of the in-process app other tests use.
    """
    root = tmp_path_factory.mktemp("e2e-server")
    with sibling_database(database_url, root) as own_database_url:
        yield from _serve(root, own_database_url)


@pytest.fixture(scope="session")
def workers_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`serve --workers 2`: two API processes and an executor process, as production runs."""
    root = tmp_path_factory.mktemp("e2e-workers")
    with sibling_database(database_url, root) as own_database_url:
        yield from _serve(root, own_database_url, "--workers", "2")


def _serve(root: Path, database_url: str, *extra: str) -> Iterator[Server]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    public_base_url = f"https://ci-{secrets.token_hex(3)}.e2e.test"
    env = _server_env(root / "data", public_base_url)
    log_path = root / "server.log"
    command = [sys.executable, "-m", "stageline", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--database-url", database_url, *extra]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield Server(base_url, public_base_url, database_url, env, process, log_path)
    finally:
        _stop(process)


@dataclass
class Account:
    role: str
    name: str
    password: str
    display_name: str
    user_id: str
    ak: str
    sk: str


@dataclass
class Tenant:
    """A project with an admin, a developer, a viewer and an outsider (member of nothing), each
    with an access key, all made with the admin CLI; plus SDK clients and tokens for them."""

    server: Server
    project_id: str
    accounts: dict[str, Account]
    cli_outputs: dict[str, list[dict[str, Any]]]
    """The parsed --json output of every bootstrap command, by command name."""
    _clients: dict[str, CodeArtsPipelineClient] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, role: str) -> CodeArtsPipelineClient:
        if role not in self._clients:
            account = self.accounts[role]
            self._clients[role] = sdk_client(self.base_url, account.ak, account.sk)
        return self._clients[role]

    def token(self, role: str) -> str:
        """An IAM-style token from POST /v3/auth/tokens with the user's password."""
        if role not in self._tokens:
            account = self.accounts[role]
            body = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": account.name, "password": account.password}},
                    }
                }
            }
            response = httpx.post(f"{self.base_url}/v3/auth/tokens", json=body, trust_env=False)
            assert response.status_code == 201, response.text
            self._tokens[role] = response.headers["X-Subject-Token"]
        return self._tokens[role]

    def raw(
        self, method: str, path: str, *, role: str = "admin", json_body: Any = None
    ) -> httpx.Response:
        """A plain HTTP call with X-Auth-Token, for asserting on the exact JSON."""
        return httpx.request(
            method,
            f"{self.base_url}{path}",
            json=json_body,
            headers={"X-Auth-Token": self.token(role)},
            trust_env=False,
            timeout=30.0,
        )

    # -- SDK shortcuts ---------------------------------------------------------------------------

    def create_pipeline(
        self,
        definition: str,
        *,
        sources: list[CodeSource] | None = None,
        name: str | None = None,
    ) -> str:
        body = PipelineDTO(
            name=name or f"e2e-{secrets.token_hex(4)}",
            is_publish=False,
            definition=definition,
            sources=sources,
        )
        response = self.client("admin").create_pipeline_new(
            CreatePipelineNewRequest(project_id=self.project_id, body=body)
        )
        pipeline_id: str = response.pipeline_id
        return pipeline_id

    def run(self, pipeline_id: str, role: str = "developer") -> str:
        # A description of its own: the SDK signs to the second, and the same signed run
        # request twice within one second is a replay, refused (two runs in a row are not).
        body = RunPipelineDTO(description=f"e2e run {secrets.token_hex(4)}")
        response = self.client(role).run_pipeline(
            RunPipelineRequest(project_id=self.project_id, pipeline_id=pipeline_id, body=body)
        )
        run_id: str = response.pipeline_run_id
        return run_id

    def latest(self, *pipeline_ids: str, role: str = "viewer") -> list[PipelineLatestRun]:
        response = self.client(role).batch_show_pipelines_latest_status(
            BatchShowPipelinesLatestStatusRequest(
                project_id=self.project_id, body=list(pipeline_ids)
            )
        )
        # The SDK deserializes an empty JSON array as `body=None`.
        items: list[PipelineLatestRun] = response.body or []
        return items

    def wait_latest(
        self,
        pipeline_id: str,
        until: Callable[[PipelineLatestRun], bool],
        *,
        timeout: float = POLL_TIMEOUT,
    ) -> PipelineLatestRun:
        """Poll batch status (via the SDK) until the pipeline's element satisfies `until`."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.latest(pipeline_id)
            if items and until(items[0]):
                return items[0]
            if time.monotonic() > deadline:
                seen = items[0] if items else "nothing"
                raise AssertionError(f"pipeline {pipeline_id} never got there; last seen: {seen}")
            time.sleep(POLL_INTERVAL)

    def wait_run(
        self, pipeline_id: str, run_id: str, status: str, *, timeout: float = POLL_TIMEOUT
    ) -> PipelineLatestRun:
        """Wait until run `run_id` is the latest run and has `status`.

        Fails at once if the run reaches another end state, so a wrong outcome shows quickly.
        """

        def done(item: PipelineLatestRun) -> bool:
            if item.pipeline_run_id != run_id:
                return False
            if item.status != status and item.status in {"COMPLETED", "FAILED", "CANCELED"}:
                raise AssertionError(f"run ended {item.status}, expected {status}: {item}")
            return bool(item.status == status)

        return self.wait_latest(pipeline_id, done, timeout=timeout)


def sdk_client(base_url: str, ak: str, sk: str) -> CodeArtsPipelineClient:
    """The official SDK pointed at our server (codearts-v5-api.md §8); http:// is kept as is."""
    config = HttpConfig.get_default_config()
    config.timeout = (10, 60)
    return (
        CodeArtsPipelineClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk))
        .with_endpoints([base_url])
        .build()
    )


@functools.cache
def e2e_repo() -> GitRepo:
    """The repository the e2e pipelines' code sources name: a commit on `main` and one on
    `release/1.x`, in a directory of its own (the servers' agents run on this host)."""
    repo = GitRepo(Path(tempfile.mkdtemp(prefix="stageline-e2e-git-")))
    repo.commit("e2e: the app", {"README.md": "e2e app\n"})
    repo.commit("e2e: release 1.x", {"RELEASE": "1.x\n"}, branch="release/1.x")
    return repo


def code_source(git_url: str | None = None, default_branch: str = "main") -> CodeSource:
    return CodeSource(
        type="code",
        params=CodeSourceParams(
            git_type="gitlab", git_url=git_url or e2e_repo().file_url, default_branch=default_branch
        ),
    )


@pytest.fixture(scope="session")
def tenant(server: Server) -> Tenant:
    """Bootstrap through the CLI (which doubles as its test): a project and four users with keys."""
    return make_tenant(server)


@pytest.fixture(scope="session")
def workers_tenant(workers_server: Server) -> Tenant:
    return make_tenant(workers_server)


def make_tenant(server: Server) -> Tenant:
    suffix = secrets.token_hex(4)
    outputs: dict[str, list[dict[str, Any]]] = {
        "create-project": [],
        "create-user": [],
        "add-member": [],
        "create-access-key": [],
    }
    project = server.cli_json("create-project", f"e2e-project-{suffix}")
    outputs["create-project"].append(project)
    project_id = project["project_id"]
    accounts = {}
    for role in (*ROLES, "outsider"):
        name = f"e2e-{role}-{suffix}"
        password = secrets.token_urlsafe(12)
        display_name = f"E2E {role.title()} {suffix}"
        user = server.cli_json(
            "create-user", name, "--password", password, "--display-name", display_name
        )
        outputs["create-user"].append(user)
        if role in ROLES:
            outputs["add-member"].append(
                server.cli_json("add-member", project_id, name, "--role", role)
            )
        keys = server.cli_json("create-access-key", name)
        outputs["create-access-key"].append(keys)
        accounts[role] = Account(
            role, name, password, display_name, user["user_id"], keys["ak"], keys["sk"]
        )
    return Tenant(server, project_id, accounts, outputs)
