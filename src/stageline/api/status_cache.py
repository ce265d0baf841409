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
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection

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

    def catch_up(self, connection: Connection) -> tuple[int, int]:
        """Read the changes since the high-water mark; returns the new mark and generation."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen
            idle = now - self._tailed_at > IDLE_RESET_SECONDS
        if seen is None or idle:
            return self._reset(connection, now)
        changes: list[tuple[int, str]] = []
        while True:
            batch = change_queries.pipelines_changed_since(
                connection, after_seq=seen, limit=TAIL_BATCH
            )
            changes.extend(batch)
            if batch:
                seen = batch[-1][0]
            if len(batch) < TAIL_BATCH:
                break
            if len(changes) >= TAIL_MAX:
                return self._reset(connection, now)
        with self._lock:
            for seq, pipeline_id in changes:
                if seq > self._last_change.get(pipeline_id, 0):
                    self._last_change[pipeline_id] = seq
            self._seen = max(self._seen or 0, seen)
            self._tailed_at = now
            if len(self._last_change) > 4 * self.max_entries:  # pipelines nobody asks about
                self._forget()
            return self._seen, self._generation

    def _reset(self, connection: Connection, now: float) -> tuple[int, int]:
        mark = change_queries.latest_seq(connection)
        with self._lock:
            self._forget()
            self._seen = mark
            self._tailed_at = now
            return mark, self._generation

    def _forget(self) -> None:
        self._entries.clear()
        self._last_change.clear()
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


Outcome = tuple[int, int] | BaseException
"""A catch-up's (mark, generation), or what it raised."""


class LogTail:
    """Reads the change log's tail on a thread of its own, once for every request waiting.

    A request awaits `fresh()`, which resolves with the high-water mark of a read that *began
    after* the request arrived (so the answer is strictly fresh), without a thread-pool round
    trip per request and without reading the database on the event loop: requests that arrive
    while a read runs share the next one.
    """

    def __init__(self, db: Database, latest_runs: LatestRuns) -> None:
        self.db = db
        self.latest_runs = latest_runs
        self._lock = threading.Lock()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[tuple[int, int]]]] = []
        self._demand = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    async def fresh(self) -> tuple[int, int]:
        """(mark, generation) of a catch-up that started after this call."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-tail", daemon=True)
                self._thread.start()
            self._waiting.append((loop, future))
            self._demand.set()
        return await future

    def stop(self) -> None:
        self._stopping = True
        self._demand.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._demand.wait()
            if self._stopping:
                return
            with self._lock:
                batch, self._waiting = self._waiting, []
                self._demand.clear()
            try:
                with self.db.connection() as connection:
                    outcome: Outcome = self.latest_runs.catch_up(connection)
            except Exception as error:  # each waiting request answers with it
                outcome = error
            for loop, future in batch:
                with contextlib.suppress(RuntimeError):  # its loop has closed
                    loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(
    future: "asyncio.Future[tuple[int, int]]", outcome: tuple[int, int] | BaseException
) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
