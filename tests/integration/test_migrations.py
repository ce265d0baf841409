"""The Alembic migrations build exactly the declared schema, and go down and up again."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from stageline.store import migrate
from stageline.store.database import Database
from stageline.store.tables import Base
from tests.databases import sibling_database


@pytest.fixture
def empty_database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """A brand-new empty database of the same kind as `database_url`."""
    with sibling_database(database_url, tmp_path) as url:
        database = Database(url)
        yield database
        database.dispose()


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
