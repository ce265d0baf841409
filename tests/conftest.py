"""Fixtures shared by every test: databases (SQLite always, PostgreSQL too), the app, servers.

Each database-backed test runs once per database. PostgreSQL comes from STAGELINE_TEST_POSTGRES_URL
(default: the local server); a fresh database is created for the session and dropped after it.
When it cannot be reached the PostgreSQL half is skipped, unless STAGELINE_TEST_REQUIRE_POSTGRES=1
(as in CI), which turns that into an error.
"""

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from stageline.api.app import create_app
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database

from .databases import fresh_postgres, sibling_database
from .factories import World

POSTGRES_ADMIN_URL = os.environ.get(
    "STAGELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("STAGELINE_TEST_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-master-secret-" + secrets.token_hex(8)


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
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over the ASGI transport, with its built-in executor running."""
    app = create_app(settings, db=db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def world(client: TestClient, db: Database, settings: Settings) -> World:
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
        yield settings.model_copy(update={"database_url": url})


@pytest.fixture(scope="session")
def quiet_db(quiet_settings: Settings) -> Iterator[Database]:
    database = Database(quiet_settings.effective_database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def quiet_client(quiet_settings: Settings, quiet_db: Database) -> Iterator[TestClient]:
    """The app without an executor: jobs stay QUEUED until a test drives them."""
    app = create_app(quiet_settings, db=quiet_db, with_executor=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def quiet_world(quiet_client: TestClient, quiet_db: Database, quiet_settings: Settings) -> World:
    return World.create(quiet_client, quiet_db, quiet_settings)
