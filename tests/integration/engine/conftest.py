"""Fixtures of the engine tests: a fresh migrated database per module, a fake clock, a rig.

A database of their own keeps these tests apart from every other test's rows: a sweep run with
the fake clock must find no job but theirs, and the change log holds only their changes.
"""

from collections.abc import Iterator

import pytest

from stageline.store import migrate
from stageline.store.database import Database
from tests.databases import sibling_database

from .rig import FakeClock, Rig


@pytest.fixture(scope="module")
def engine_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """An empty, migrated database of the kind of `database_url`, for one module."""
    with sibling_database(database_url, tmp_path_factory.mktemp("engine")) as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rig(engine_db: Database, clock: FakeClock) -> Rig:
    """A project and an agent pool of its own, with the engine on the fake clock."""
    return Rig(engine_db, clock)
