"""The Alembic migrations build exactly the declared schema, and go down and up again."""

import secrets
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from stageline.store import migrate
from stageline.store.database import Database
from stageline.store.tables import Base


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Database]:
    """A brand-new empty database of the same kind as `database_url`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = f"{url.database}.{secrets.token_hex(4)}.db"
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    name = f"stageline_mig_{secrets.token_hex(4)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(url.set(database=name).render_as_string(hide_password=False))
    yield database
    database.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_matches_the_tables_then_downgrades_and_upgrades_again(
    empty_database: Database,
) -> None:
    engine = empty_database.engine
    migrate.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert "pipeline_run" in inspect(engine).get_table_names()
