"""Batch-status elements kept per process and per pipeline, made fresh from the change log.

Every status change is appended to the change log with a global sequence number, visible in
sequence order (see `store.queries.changes`). Each request first reads the changes since this
process's high-water mark, then answers every pipeline whose element was rendered after its last
change from memory, and reads and renders only the rest. A change committed by any process is
therefore in the very next answer of every process, at the cost of one primary-key range scan
when nothing changed, however long the history.
"""

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from cachetools import LRUCache
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from stageline.api.etags import element_digest
from stageline.api.render import Renderer
from stageline.store.database import Database
from stageline.store.queries import changes as change_queries
from stageline.store.queries import runs as run_queries

TAIL_BATCH = 5_000
"""Changes read per statement while catching up."""
TAIL_MAX = 50_000
"""A process further behind than this forgets what it holds rather than replaying the log."""
IDLE_RESET_SECONDS = 600.0
"""A process that has not read the log for this long starts afresh: the log keeps days of
changes, so nothing it missed can have been pruned meanwhile."""
CLOSE_WAIT_SECONDS = 5.0
"""How long a shutdown waits for a read of the tail under way on the event loop."""
LATEST = None
"""What `LatestRuns.catching_up` yields to ask where the log ends."""
ANSWER_MEMO_BYTES = 64 * 1024 * 1024
"""Whole answers kept per process for requests repeated word for word (dashboards and monitors
poll the same IDs): some 500 answers of 100 pipelines each."""


def answer_key(*parts: bytes | str) -> bytes:
    """A fixed-size key for a request's words: however large the request, a remembered answer's
    key costs 16 bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


@dataclass
class Answer:
    """A whole batch-status answer, current up to `mark` until one of its pipelines changes."""

    pipeline_ids: Sequence[str]
    mark: int
    generation: int
    evictions: int
    body: bytes
    etag: str

    @property
    def size(self) -> int:
        """Roughly what it holds in memory: the body, the IDs and the record itself."""
        return len(self.body) + 100 * len(self.pipeline_ids) + 1_000


@dataclass(frozen=True)
class Entry:
    project_id: str | None
    """The pipeline's project; None for an ID that names no pipeline."""
    element: bytes | None
    """The rendered PipelineLatestRun; None when the pipeline has no run or was deleted."""
    rendered_after: int
    """The change log's high-water mark read before the rows this was rendered from."""
    status: str | None = None
    """The run's status, which the `status=` filter asks about; None with no element."""
    digest: bytes = b""
    """`etags.element_digest` of the element: an answer's ETag hashes these, not its body."""


class LatestRuns:
    """A bounded LRU map from pipeline ID to its rendered latest run, and the log's tail."""

    def __init__(self, renderer: Renderer, *, max_entries: int = 50_000) -> None:
        self.renderer = renderer
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._last_change: dict[str, int] = {}
        self._seen: int | None = None
        self._tailed_at = 0.0
        self._generation = 0
        """Bumped whenever what is held is dropped: renders begun before are then not kept."""
        self._evictions = 0
        """Bumped whenever a pipeline is evicted, which forgets when it last changed."""
        self._answers: LRUCache[bytes, Answer] = LRUCache(
            ANSWER_MEMO_BYTES, getsizeof=lambda answer: answer.size
        )
        self._lock = threading.Lock()

    def lookup(self, pipeline_ids: Sequence[str]) -> tuple[dict[str, Entry], list[str]]:
        """What is held and still fresh, and the IDs that must be read: no I/O."""
        found: dict[str, Entry] = {}
        missing: list[str] = []
        with self._lock:
            for pipeline_id in pipeline_ids:
                entry = self._entries.get(pipeline_id)
                if entry is not None and entry.rendered_after >= self._last_change.get(
                    pipeline_id, 0
                ):
                    self._entries.move_to_end(pipeline_id)
                    found[pipeline_id] = entry
                else:
                    missing.append(pipeline_id)
        return found, missing

    def render(
        self, connection: Connection, pipeline_ids: list[str], mark: int, generation: int
    ) -> dict[str, Entry]:
        """Read and render these pipelines' latest runs, and keep them."""
        fresh = self._render(connection, pipeline_ids, mark)
        self._keep(fresh, generation)
        return fresh

    @staticmethod
    def assemble(
        project_id: str,
        pipeline_ids: Sequence[str],
        found: dict[str, Entry],
        statuses: frozenset[str] | None = None,
    ) -> list[Entry]:
        """The entries with an element of the project's pipelines among `found`, in request
        order; only those whose run is in `statuses` when given."""
        return [
            entry
            for pipeline_id in pipeline_ids
            if (entry := found[pipeline_id]).element is not None
            and entry.project_id == project_id
            and (statuses is None or entry.status in statuses)
        ]

    def recall(self, key: bytes, mark: int, generation: int) -> tuple[bytes, str] | None:
        """The body and ETag remembered under `key` (an `answer_key`), if none of its pipelines
        changed since; `mark` and `generation` are those of a catch-up that began after the
        request arrived."""
        with self._lock:
            answer = self._answers.get(key)
            if answer is None:
                return None
            if answer.mark < mark:
                current = (
                    generation == answer.generation == self._generation
                    and answer.evictions == self._evictions
                    and all(
                        self._last_change.get(pipeline_id, 0) <= answer.mark
                        for pipeline_id in answer.pipeline_ids
                    )
                )
                if not current:
                    del self._answers[key]
                    return None
                answer.mark = mark  # none of them changed up to the newer mark either
            return answer.body, answer.etag

    def remember(
        self,
        key: bytes,
        pipeline_ids: Sequence[str],
        mark: int,
        generation: int,
        body: bytes,
        etag: str,
    ) -> None:
        """Keep an answer made of elements current up to `mark`, to `recall` it."""
        answer = Answer(pipeline_ids, mark, generation, self._evictions, body, etag)
        if answer.size > ANSWER_MEMO_BYTES // 8:
            return
        with self._lock:
            if generation == self._generation and answer.evictions == self._evictions:
                self._answers[key] = answer

    def catch_up(self, connection: Connection) -> tuple[int, int]:
        """Read the changes since the high-water mark; returns the new mark and generation."""
        steps = self.catching_up()
        answer: Any = None
        while True:
            try:
                query = steps.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if query is LATEST:
                answer = change_queries.latest_seq(connection)
            else:
                answer = change_queries.pipelines_changed_since(
                    connection, after_seq=query, limit=TAIL_BATCH
                )

    def catching_up(self) -> Generator[int | None, Any, tuple[int, int]]:
        """`catch_up` without I/O, for a caller that reads the log its own way: it yields
        `LATEST` for `changes.latest_seq`, or a mark for `changes.pipelines_changed_since` after
        it (TAIL_BATCH at most), is sent what the read returned, and returns what `catch_up`
        does."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen
            idle = now - self._tailed_at > IDLE_RESET_SECONDS
        if seen is None or idle:
            return self._reset((yield LATEST), now)
        changes: list[tuple[int, str]] = []
        while True:
            batch: list[tuple[int, str]] = yield seen
            changes.extend(batch)
            if batch:
                seen = batch[-1][0]
            if len(batch) < TAIL_BATCH:
                break
            if len(changes) >= TAIL_MAX:
                return self._reset((yield LATEST), now)
        with self._lock:
            for seq, pipeline_id in changes:
                if seq > self._last_change.get(pipeline_id, 0):
                    self._last_change[pipeline_id] = seq
            self._seen = max(self._seen or 0, seen)
            self._tailed_at = now
            if len(self._last_change) > 4 * self.max_entries:  # pipelines nobody asks about
                self._forget()
            return self._seen, self._generation

    def _reset(self, mark: int, now: float) -> tuple[int, int]:
        with self._lock:
            self._forget()
            self._seen = mark
            self._tailed_at = now
            return mark, self._generation

    def _forget(self) -> None:
        self._entries.clear()
        self._last_change.clear()
        self._answers.clear()
        self._generation += 1

    def _render(
        self, connection: Connection, pipeline_ids: list[str], mark: int
    ) -> dict[str, Entry]:
        latest = run_queries.latest_runs_of(connection, pipeline_ids=pipeline_ids)
        run_ids = [run_id for _, run_id in latest.values() if run_id is not None]
        rows = run_queries.read_runs_for_status(connection, run_ids=run_ids) if run_ids else []
        rendered = {row.id: orjson.dumps(self.renderer.latest_run(row)) for row in rows}
        statuses = {row.id: row.status for row in rows}
        fresh = {}
        for pipeline_id in pipeline_ids:
            project_id, run_id = latest.get(pipeline_id, (None, None))
            element = rendered.get(run_id) if run_id is not None else None
            status = statuses.get(run_id) if run_id is not None else None
            digest = element_digest(element) if element is not None else b""
            fresh[pipeline_id] = Entry(project_id, element, mark, status, digest)
        return fresh

    def _keep(self, fresh: dict[str, Entry], generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            for pipeline_id, entry in fresh.items():
                held = self._entries.get(pipeline_id)
                if held is None or held.rendered_after <= entry.rendered_after:
                    self._entries[pipeline_id] = entry
                    self._entries.move_to_end(pipeline_id)
            while len(self._entries) > self.max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._last_change.pop(evicted, None)
                self._evictions += 1


Outcome = tuple[int, int] | BaseException
"""A catch-up's (mark, generation), or what it raised."""


class LogTail:
    """Reads the change log's tail on a thread of its own, once for every request waiting.

    A request awaits `fresh()`, which resolves with the high-water mark of a read that *began
    after* the request arrived (so the answer is strictly fresh), without a thread-pool round
    trip per request and without reading the database on the event loop: requests that arrive
    while a read runs share the next one.

    On SQLite a request first reads the file's commit counter (`store.database.CommitCounter`,
    which never waits): when no connection has committed since the counter was read before the
    last catch-up began, that catch-up's mark is still the newest, and no read is needed.

    On PostgreSQL the tail is read on the event loop itself, through an asynchronous connection
    (`TailOnTheLoop`): a round trip that waits without holding up the loop costs less than the
    hand-over to a thread and back. Only a request on another event loop than the first (tests
    serve one app from several) goes through the thread.
    """

    def __init__(self, db: Database, latest_runs: LatestRuns) -> None:
        self.db = db
        self.latest_runs = latest_runs
        self._commits = db.commit_counter()
        self._on_the_loop = None if db.is_sqlite else TailOnTheLoop(db, latest_runs)
        self._current: tuple[int, tuple[int, int]] | None = None
        """(commit counter read before a catch-up began, that catch-up's outcome)."""
        self._lock = threading.Lock()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[tuple[int, int]]]] = []
        self._demand = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    async def fresh(self) -> tuple[int, int]:
        """(mark, generation) of a catch-up that started after this call."""
        if self._commits is not None:
            current = self._current
            if current is not None and current[0] == self._commits.read():
                return current[1]
        loop = asyncio.get_running_loop()
        if self._on_the_loop is not None and self._on_the_loop.serves(loop):
            return await self._on_the_loop.fresh()
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-tail", daemon=True)
                self._thread.start()
            self._waiting.append((loop, future))
            self._demand.set()
        return await future

    async def aclose(self) -> None:
        """Close the asynchronous connection, on the event loop it belongs to (`stop` ends the
        thread)."""
        if self._on_the_loop is not None:
            await self._on_the_loop.aclose()

    def stop(self) -> None:
        self._stopping = True
        self._demand.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._commits is not None:
            self._commits.close()

    def _run(self) -> None:
        connection: Connection | None = None
        try:
            while True:
                self._demand.wait()
                if self._stopping:
                    return
                with self._lock:
                    batch, self._waiting = self._waiting, []
                    self._demand.clear()
                commits = self._commits.read() if self._commits is not None else None
                try:
                    outcome: Outcome
                    outcome, connection = self._catch_up(connection)
                except Exception as error:  # each waiting request answers with it
                    outcome, connection = error, None
                self._current = (
                    (commits, outcome)
                    if commits is not None and not isinstance(outcome, BaseException)
                    else None
                )
                for loop, future in batch:
                    with contextlib.suppress(RuntimeError):  # its loop has closed
                        loop.call_soon_threadsafe(_settle, future, outcome)
        finally:
            if connection is not None:
                connection.close()

    def _catch_up(self, kept: Connection | None) -> tuple[tuple[int, int], Connection]:
        """Catch up on the connection kept from the last read: checking one out of the pool
        costs more than the read, and on PostgreSQL the pool's liveness ping is a round trip of
        its own. A kept connection found broken is replaced once."""
        if kept is not None:
            try:
                return self._read(kept), kept
            except Exception as error:
                kept.close()
                if not (isinstance(error, DBAPIError) and error.connection_invalidated):
                    raise
        connection = self.db.open_connection()
        try:
            return self._read(connection), connection
        except BaseException:
            connection.close()
            raise

    def _read(self, connection: Connection) -> tuple[int, int]:
        outcome = self.latest_runs.catch_up(connection)
        connection.rollback()  # SQLite: the next read must not see this one's snapshot
        return outcome


class TailOnTheLoop:
    """The change log's tail read on one event loop through an asynchronous PostgreSQL
    connection, once for every request waiting: a request waits for the next read to *begin*
    (requests that arrive while one runs share the one after it), so its answer is strictly
    fresh. The connection is kept between reads; one found broken is replaced once."""

    def __init__(self, db: Database, latest_runs: LatestRuns) -> None:
        self.db = db
        self.latest_runs = latest_runs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._next: asyncio.Future[tuple[int, int]] | None = None
        """What the requests waiting for the next read await."""
        self._reader: asyncio.Task[None] | None = None

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether requests on `loop` are read for here: the first loop to ask is served (and
        the next one once it has closed)."""
        if self._loop is None or (self._loop is not loop and self._loop.is_closed()):
            self._loop, self._connection, self._next, self._reader = loop, None, None, None
        return self._loop is loop

    async def fresh(self) -> tuple[int, int]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read())
        return await asyncio.shield(self._next)

    async def aclose(self) -> None:
        """Let a read under way end (for at most `CLOSE_WAIT_SECONDS`: a database that does not
        answer must not hold up a shutdown), then close the connection."""
        if self._reader is not None and not self._reader.done():
            await asyncio.wait([self._reader], timeout=CLOSE_WAIT_SECONDS)
            self._reader.cancel()
        if self._connection is not None and self._loop is asyncio.get_running_loop():
            await self._connection.close()
        self._connection = None

    async def _read(self) -> None:
        while self._next is not None:
            waiting, self._next = self._next, None
            try:
                outcome = await self._catch_up()
            except Exception as error:  # each waiting request answers with it
                if not waiting.done():
                    waiting.set_exception(error)
            else:
                if not waiting.done():
                    waiting.set_result(outcome)

    async def _catch_up(self) -> tuple[int, int]:
        if self._connection is not None:
            try:
                return await self._catch_up_on(self._connection)
            except psycopg.Error:
                if not self._connection.broken:
                    raise
                self._connection = None
        self._connection = await self.db.connect_async()
        return await self._catch_up_on(self._connection)

    async def _catch_up_on(self, connection: "psycopg.AsyncConnection[Any]") -> tuple[int, int]:
        steps = self.latest_runs.catching_up()
        answer: Any = None
        while True:
            try:
                query = steps.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if query is LATEST:
                answer = await change_queries.latest_seq_on(connection)
            else:
                answer = await change_queries.pipelines_changed_since_on(
                    connection, after_seq=query, limit=TAIL_BATCH
                )


def _retrieve(future: "asyncio.Future[tuple[int, int]]") -> None:
    """Mark a read's error as seen even when every request that awaited it has gone."""
    if not future.cancelled():
        future.exception()


def _settle(
    future: "asyncio.Future[tuple[int, int]]", outcome: tuple[int, int] | BaseException
) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
