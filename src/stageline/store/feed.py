"""Learn of committed status changes made by any process: the change log as a live feed.

On PostgreSQL every appending transaction NOTIFYs (`queries.changes`), so a listening connection
hears of a change as soon as it commits; on SQLite the log is tailed, which costs one
primary-key range scan per poll. Either way subscribers receive the new rows in `seq` order, on
the feed's own thread.
"""

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from stageline.store.database import Database
from stageline.store.queries import changes as change_queries
from stageline.store.queries.changes import Change

log = logging.getLogger(__name__)

Subscriber = Callable[[list[Change]], None]
POLL_SECONDS = 0.2
"""How often SQLite's log is tailed; PostgreSQL is woken by NOTIFY and checks once a second."""
BATCH = 1000


class ChangeFeed:
    def __init__(self, db: Database, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._subscribers: list[Subscriber] = []
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def start(self) -> None:
        """Deliver every change committed from now on: the starting point is read here, before
        the thread runs, so a change committed right after `start` returns is not missed."""
        with self.db.connection() as connection:
            self._seen = change_queries.latest_seq(connection)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _ in self._wakeups():
                    self._seen = self._deliver(self._seen)
            except Exception:  # the database went away: go on from where it was, shortly
                log.exception("change feed interrupted; reconnecting")
                self._stop.wait(1.0)

    def _wakeups(self) -> Iterator[None]:
        """Yields whenever there may be new changes, until stopped."""
        if self.db.is_sqlite:
            while not self._stop.wait(self.poll_seconds):
                yield
            return
        with self._listening() as connection:
            while not self._stop.is_set():
                # Back at the first notification (with any already pending), or after a
                # second without one: one read catches up with every change announced.
                for _ in connection.notifies(timeout=1.0, stop_after=1):
                    pass
                yield

    @contextlib.contextmanager
    def _listening(self) -> Iterator[Any]:
        """A connection of its own, out of the pool, that LISTENs in autocommit mode."""
        raw = self.db.engine.raw_connection()
        connection: Any = raw.driver_connection  # psycopg.Connection
        raw.detach()  # it never goes back to the pool in LISTEN mode
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {change_queries.NOTIFY_CHANNEL}")
            yield connection
        finally:
            raw.close()

    def _deliver(self, seen: int) -> int:
        with self.db.connection() as connection:
            while True:
                changes = change_queries.changes_after(connection, after_seq=seen, limit=BATCH)
                if not changes:
                    return seen
                seen = changes[-1][0]
                for subscriber in self._subscribers:
                    try:
                        subscriber(changes)
                    except Exception:
                        log.exception("a change feed subscriber failed")
