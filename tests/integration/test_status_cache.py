"""What a server process keeps for batch status, driven directly on a database of its own: the
change log's tail (`LogTail`) and the whole answers it remembers (`LatestRuns.recall`).

The HTTP tests (`test_batch_status.py`, and two server processes in `e2e/test_workers.py`) show
the same freshness through the API; these show what is, and is not, read to get it.
"""

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from stageline.api import status_cache
from stageline.api.render import Renderer
from stageline.api.status_cache import LatestRuns, LogTail, answer_key
from stageline.engine.journal import Actor, Journal
from stageline.store import migrate
from stageline.store.database import Database
from stageline.store.queries import changes as change_queries
from tests.databases import sibling_database

PROJECT = "p" * 32
KEY = answer_key(PROJECT, b'["' + b"a" * 32 + b'"]')


@pytest.fixture
def own_db(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """A database of each kind that nothing else writes to: every commit is the test's own."""
    with sibling_database(database_url, tmp_path) as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


@pytest.fixture
def tail(own_db: Database) -> Iterator[LogTail]:
    log_tail = LogTail(own_db, latest_runs())
    yield log_tail
    log_tail.stop()


@pytest.fixture
def other_process(own_db: Database) -> Iterator[Database]:
    """The same database through connections of their own, as another server process has."""
    database = Database(str(own_db.engine.url))
    yield database
    database.dispose()


def on_a_loop(tail: LogTail, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run `scenario` on an event loop of its own, then close what `tail` opened on it."""

    async def run() -> None:
        try:
            await scenario()
        finally:
            await tail.aclose()

    asyncio.run(run())


def latest_runs() -> LatestRuns:
    return LatestRuns(Renderer(display_tz=UTC, public_base_url="https://ci.example.test"))


def change(db: Database, pipeline_id: str) -> None:
    """Append one change of `pipeline_id` to the log (its deletion), as the engine's door does."""
    journal = Journal(now=0, actor=Actor.user("test"))
    journal.record_deletion(project_id=PROJECT, pipeline_id=pipeline_id)
    with db.writer() as session:
        journal.flush(session)


def catch_up(cache: LatestRuns, db: Database) -> tuple[int, int]:
    """A catch-up on a connection of its own, as `LogTail` makes it (a connection that stays
    open keeps the snapshot it began with on SQLite)."""
    with db.connection() as connection:
        return cache.catch_up(connection)


def render(cache: LatestRuns, db: Database, pipeline_id: str, mark: int, generation: int) -> None:
    with db.connection() as connection:
        cache.render(connection, [pipeline_id], mark, generation)


class TailReads:
    """Counts the reads of the log's tail, whichever way they are made: the real queries,
    wrapped (on PostgreSQL the tail is read through an asynchronous connection of its own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in (
            "latest_seq",
            "pipelines_changed_since",
            "latest_seq_on",
            "pipelines_changed_since_on",
        ):
            monkeypatch.setattr(change_queries, name, self._counting(getattr(change_queries, name)))

    def _counting(self, read: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return read(*args, **kwargs)

        return counted

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


class TestLogTail:
    def test_a_question_reads_the_log_at_most_once_and_on_sqlite_only_after_a_commit(
        self,
        own_db: Database,
        tail: LogTail,
        other_process: Database,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """On SQLite the file's commit counter says whether anything was committed since the
        last read; PostgreSQL has no such counter, and the tail is read for every question."""
        reads = TailReads(monkeypatch)
        unchanged_reads = 0 if own_db.is_sqlite else 1

        async def scenario() -> None:
            first = await tail.fresh()
            assert reads.take() == 1, "the first question reads where the log ends"
            assert await tail.fresh() == first
            assert await tail.fresh() == first
            assert reads.take() == 2 * unchanged_reads
            change(other_process, "a" * 32)
            after = await tail.fresh()
            assert after[0] > first[0], "the change is seen at once"
            assert reads.take() == 1
            assert await tail.fresh() == after
            assert reads.take() == unchanged_reads

        on_a_loop(tail, scenario)

    def test_questions_asked_together_share_a_read(
        self, tail: LogTail, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        reads = TailReads(monkeypatch)

        async def scenario() -> None:
            answers = await asyncio.gather(*(tail.fresh() for _ in range(20)))
            assert len(set(answers)) == 1
            assert 1 <= reads.take() <= 2  # the first read, and one for those it began before

        on_a_loop(tail, scenario)

    def test_a_connection_the_server_dropped_is_replaced_without_an_error(
        self, own_db: Database, tail: LogTail, other_process: Database
    ) -> None:
        """The tail keeps its connection between reads; a PostgreSQL restart or an idle
        timeout that drops it costs the next question nothing but a new connection."""
        if own_db.is_sqlite:
            pytest.skip("SQLite has no server to drop a connection")

        async def scenario() -> None:
            first = await tail.fresh()
            with other_process.connection() as connection:
                dropped = connection.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).scalar_one()
            assert dropped >= 1
            change(other_process, "a" * 32)
            after = await tail.fresh()
            assert after[0] > first[0]

        on_a_loop(tail, scenario)

    def test_a_read_the_database_does_not_answer_does_not_hold_up_a_shutdown(
        self, own_db: Database, tail: LogTail, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if own_db.is_sqlite:
            pytest.skip("SQLite readers never wait for a lock (write-ahead log)")
        monkeypatch.setattr(status_cache, "CLOSE_WAIT_SECONDS", 0.2)

        async def scenario() -> None:
            await tail.fresh()
            with own_db.engine.connect() as locker:
                locker.exec_driver_sql("LOCK TABLE status_change IN ACCESS EXCLUSIVE MODE")
                question = asyncio.create_task(tail.fresh())
                await asyncio.sleep(0.3)
                assert not question.done(), "the read waits for the lock"
                await asyncio.wait_for(tail.aclose(), timeout=10)
                locker.rollback()
            question.cancel()

        on_a_loop(tail, scenario)


class TestRememberedAnswers:
    def test_an_answer_holds_until_one_of_its_own_pipelines_changes(self, own_db: Database) -> None:
        cache = latest_runs()
        mine, other = secrets.token_hex(16), secrets.token_hex(16)
        mark, generation = catch_up(cache, own_db)
        cache.remember(KEY, [mine], mark, generation, b"[1]", '"e1"')
        assert cache.recall(KEY, mark, generation) == (b"[1]", '"e1"')
        assert cache.recall(answer_key("another"), mark, generation) is None

        change(own_db, other)
        mark, generation = catch_up(cache, own_db)
        assert cache.recall(KEY, mark, generation) == (b"[1]", '"e1"'), (
            "another pipeline's change leaves it current"
        )

        change(own_db, mine)
        mark, generation = catch_up(cache, own_db)
        assert cache.recall(KEY, mark, generation) is None
        assert cache.recall(KEY, mark, generation) is None, "and it is forgotten"

    def test_an_answer_is_not_trusted_once_a_pipeline_was_evicted(self, own_db: Database) -> None:
        """Eviction forgets when a pipeline last changed, so no answer can vouch for it."""
        cache = LatestRuns(
            Renderer(display_tz=UTC, public_base_url="https://ci.example.test"), max_entries=1
        )
        mine = secrets.token_hex(16)
        mark, generation = catch_up(cache, own_db)
        render(cache, own_db, mine, mark, generation)
        cache.remember(KEY, [mine], mark, generation, b"[1]", '"e1"')
        change(own_db, mine)
        mark, generation = catch_up(cache, own_db)
        render(cache, own_db, secrets.token_hex(16), mark, generation)  # evicts mine
        assert cache.recall(KEY, mark, generation) is None
