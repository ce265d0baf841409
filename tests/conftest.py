"""Fixtures shared by every test: databases (SQLite always, PostgreSQL too), the app, servers.

Each database-backed test runs once per database. PostgreSQL comes from STAGELINE_TEST_POSTGRES_URL
(default: the local server); a fresh database is created for the session and dropped after it.
When it cannot be reached the PostgreSQL half is skipped, unless STAGELINE_TEST_REQUIRE_POSTGRES=1
(as in CI), which turns that into an error.
"""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stageline.api.app import create_app
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database, normalize_url

from .factories import World

POSTGRES_ADMIN_URL = os.environ.get(
    "STAGELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("STAGELINE_TEST_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-master-secret-" + secrets.token_hex(8)


def _postgres_database() -> Iterator[str]:
    admin_url = normalize_url(POSTGRES_ADMIN_URL)
    name = f"stageline_test_{secrets.token_hex(4)}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database of each kind, shared by the tests of the session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'stageline.db'}"
        urls: Iterator[str] = iter([url])
    else:
        urls = _postgres_database()
    url = next(urls)
    database = Database(url)
    migrate.upgrade(database.engine)
    database.dispose()
    yield url
    for _ in urls:  # runs the PostgreSQL generator's clean-up
        pass


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
