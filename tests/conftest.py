"""Fixtures shared by every test: databases (SQLite always, PostgreSQL too), the app, servers.

Each database-backed test runs once per database. PostgreSQL comes from STAGELINE_TEST_POSTGRES_URL
(default: the local server); a fresh database is created for the session and dropped after it.
When it cannot be reached the PostgreSQL half is skipped, unless STAGELINE_TEST_REQUIRE_POSTGRES=1
(as in CI), which turns that into an error.

`client` talks real HTTP to the app served by uvicorn on loopback, where a real build agent (the
same code as `stageline agent`, on threads of the test process) runs the jobs. `quiet_client`
serves a second database over the ASGI transport with no agent: tests play the agent there.
"""

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from stageline.agent.loop import Agent, AgentConfig
from stageline.agent.transport import HttpJobSource
from stageline.api.app import create_app
from stageline.auth import accounts
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database
from stageline.web.app import create_app as create_dashboard_app

from .databases import fresh_postgres, sibling_database
from .factories import World
from .gitrepos import GitRepo

POSTGRES_ADMIN_URL = os.environ.get(
    "STAGELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("STAGELINE_TEST_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-master-secret-" + secrets.token_hex(8)
QUIET_LEASE_SECONDS = 2.0
"""Lease of claims on the quiet server: tests that let one expire wait this long."""


def pytest_configure(config: pytest.Config) -> None:
    """Tests send SIGINT to the commands they start, as Ctrl-C does. A suite started in the
    background by a shell without job control (`cmd &` in a script) inherits SIGINT ignored,
    and every command it starts would inherit that too and never see the test's Ctrl-C:
    give SIGINT back its usual meaning, which the commands then inherit."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """Serve `app` with uvicorn (and these Config `options`) on a thread, on a free loopback
    port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database of each kind, shared by the tests of the session."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'stageline.db'}"
        else:
            try:
                url = stack.enter_context(fresh_postgres(POSTGRES_ADMIN_URL))
            except OperationalError as error:
                if REQUIRE_POSTGRES:
                    raise
                pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}")
        database = Database(url)
        migrate.upgrade(database.engine)
        database.dispose()
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=TEST_SECRET,
        public_base_url="https://ci.example.test",
        executor_slots=8,
    )


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.effective_database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    """The app served over HTTP on a free loopback port; yields its base URL."""
    app = create_app(settings, db=db)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def dashboard(settings: Settings, db: Database, agent: Agent) -> Iterator[str]:
    """The server's app with the dashboard (`stageline.web.app`) over the same database as
    `live_server`, whose agent runs the jobs its pages start; yields its base URL. Its public
    base URL is plain http, as a browser on loopback reaches it, so its cookies are not Secure.
    """
    app = create_dashboard_app(settings.model_copy(update={"public_base_url": ""}), db=db)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def agent(
    live_server: str, settings: Settings, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agent]:
    """A build agent working for `live_server`, under its own agent identity."""
    key = accounts.create_agent(
        db, settings, name=f"agent-{secrets.token_hex(4)}", now=system_clock()
    )
    source = HttpJobSource(live_server, access_key=key.ak, secret_key=key.sk)
    config = AgentConfig(
        workdir=tmp_path_factory.mktemp("agent"),
        concurrency=8,
        heartbeat_seconds=0.5,
        claim_wait_seconds=5.0,
        deliver_seconds=10.0,
    )
    runner = Agent(source, config)
    runner.start()
    yield runner
    runner.shutdown(timeout=10)
    source.close()


@pytest.fixture(scope="session")
def client(live_server: str, agent: Agent) -> Iterator[httpx.Client]:
    """An HTTP client of `live_server`, whose jobs `agent` runs."""
    with httpx.Client(base_url=live_server, timeout=30) as http:
        yield http


@pytest.fixture
def world(client: httpx.Client, db: Database, settings: Settings) -> World:
    """A fresh project with an admin, a developer and a viewer, so tests never share data."""
    return World.create(client, db, settings)


@pytest.fixture(scope="session")
def data_dir(settings: Settings) -> Path:
    return settings.data_dir


@pytest.fixture(scope="session")
def quiet_settings(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for a second database of the same kind that no executor works on."""
    with sibling_database(database_url, tmp_path_factory.mktemp("quiet")) as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        database.dispose()
        yield settings.model_copy(
            update={"database_url": url, "agent_lease_seconds": QUIET_LEASE_SECONDS}
        )


@pytest.fixture(scope="session")
def quiet_db(quiet_settings: Settings) -> Iterator[Database]:
    database = Database(quiet_settings.effective_database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def quiet_client(quiet_settings: Settings, quiet_db: Database) -> Iterator[TestClient]:
    """The app without an agent: jobs stay QUEUED until a test claims them; leases are short."""
    app = create_app(quiet_settings, db=quiet_db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def quiet_world(quiet_client: httpx.Client, quiet_db: Database, quiet_settings: Settings) -> World:
    return World.create(quiet_client, quiet_db, quiet_settings)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A bare repository with one commit on `main` (a README)."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit("initial commit", {"README.md": "hello from main\n"})
    return repo
