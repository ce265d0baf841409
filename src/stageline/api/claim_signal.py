"""Wakes agents' waiting claims when a job is queued, by this process or another."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from stageline.domain.statuses import STAGE_WAITING_FOR_AGENT
from stageline.store.queries.changes import Change

Listener = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class ClaimSignal:
    """Waiting claims each hold an `asyncio.Event`; `notify` (called by the engine from any
    thread) sets them on their own event loops, so an idle claim costs nothing until then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[Listener] = set()

    def notify(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, set()
        for loop, event in listeners:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def listening(self) -> Iterator[asyncio.Event]:
        """An event the next `notify` sets. Enter it before looking for a job, so that a job
        queued while looking is not missed."""
        listener = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._listeners.add(listener)
        try:
            yield listener[1]
        finally:
            with self._lock:
                self._listeners.discard(listener)

    def on_changes(self, changes: list[Change]) -> None:
        """A change feed subscriber: wake the claims when any job was queued."""
        if any(c.entity == "job" and c.to_status in STAGE_WAITING_FOR_AGENT for c in changes):
            self.notify()
