"""Committed status changes, handed to the requests that stream them as they happen.

The change feed (`store.feed.ChangeFeed`) delivers every change committed by any process on its
own thread; `LiveChanges` passes each one to the watches that want it (a project, some of its
pipelines, or one run), on the watch's event loop. A watch holds at most `MAX_PENDING` changes
not yet taken: one that falls further behind is told it `overflowed` and reads the current state
instead, so a stalled client costs bounded memory.
"""

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

from stageline.engine.metrics import NAMESPACE
from stageline.store.queries.changes import Change

MAX_PENDING = 10_000


@dataclass(eq=False)
class Watch:
    """The changes one streaming request is waiting for."""

    project_id: str
    pipeline_ids: frozenset[str] | None
    """None: every pipeline of the project."""
    run_id: str | None
    loop: asyncio.AbstractEventLoop
    _pending: list[Change] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    """Changes were dropped since the last `next`: what is shown must be read afresh."""

    def wants(self, change: Change) -> bool:
        if change.project_id != self.project_id:
            return False
        if self.run_id is not None:
            return change.run_id == self.run_id
        return self.pipeline_ids is None or change.pipeline_id in self.pipeline_ids

    async def next(self, timeout: float) -> list[Change]:
        """The changes that arrived since the last call, waiting up to `timeout` seconds for
        one; an empty list when none came (time for a heartbeat) or the watch overflowed."""
        if not self._pending and not self.overflowed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        self._arrived.clear()
        taken, self._pending = self._pending, []
        return taken

    def take_overflow(self) -> bool:
        overflowed, self.overflowed = self.overflowed, False
        return overflowed

    def _add(self, changes: list[Change]) -> None:
        """On the watch's loop."""
        if self.overflowed:
            return
        if len(self._pending) + len(changes) > MAX_PENDING:
            self._pending.clear()
            self.overflowed = True
        else:
            self._pending.extend(changes)
        self._arrived.set()


class LiveChanges:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._streams = Gauge(
            "streams_open",
            "Streaming requests open now (status streams and the dashboard's live pages).",
            namespace=NAMESPACE,
            registry=registry or CollectorRegistry(),
            multiprocess_mode="livesum",
        )

    @contextlib.contextmanager
    def watch(
        self,
        *,
        project_id: str,
        pipeline_ids: frozenset[str] | None = None,
        run_id: str | None = None,
    ) -> Iterator[Watch]:
        """Watch from now on, on the running event loop, until the block ends."""
        watch = Watch(project_id, pipeline_ids, run_id, asyncio.get_running_loop())
        with self._lock:
            self._watches.add(watch)
        self._streams.inc()
        try:
            yield watch
        finally:
            self._streams.dec()
            with self._lock:
                self._watches.discard(watch)

    def on_changes(self, changes: list[Change]) -> None:
        """A change feed subscriber (on the feed's thread)."""
        with self._lock:
            watches = list(self._watches)
        for watch in watches:
            wanted = [change for change in changes if watch.wants(change)]
            if wanted:
                with contextlib.suppress(RuntimeError):  # its loop has closed
                    watch.loop.call_soon_threadsafe(watch._add, wanted)
