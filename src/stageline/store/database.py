"""Engine and session factories for SQLite (WAL) and PostgreSQL.

Two session kinds: `reader()` for queries and `writer()` for changes. On SQLite a writer begins with
BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of failing with
"database is locked" when a read lock cannot be upgraded.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stageline.files import narrow, private_dir, private_file

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 16_384
"""Page cache per connection; the default 2 MiB makes even primary-key reads go to the OS."""


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and pick the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql(
            "BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN"
        )


def _private_sqlite_files(database: str) -> None:
    """Create the database file 0600 (in a 0700 directory when that is new) before SQLite does:
    SQLite would create it 0644, and it creates the -wal and -shm files with the database file's
    mode. Files an earlier version left open to others are narrowed."""
    path = Path(database)
    private_dir(path.parent)
    private_file(path)
    for suffix in ("-wal", "-shm"):
        narrow(path.with_name(path.name + suffix))


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_files(parsed.database)
        engine = create_engine(url, pool_size=8, max_overflow=16)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


class CommitCounter:
    """A number that moves whenever any connection to a SQLite file, of this process or any
    other, commits: `PRAGMA data_version` on a connection of its own.

    Reading it opens and closes a read transaction and touches no table (about 5 µs). It never
    waits: with the busy timeout at 0, a file that cannot be read at once reads as None.
    """

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(
            path, timeout=0, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()

    def read(self) -> int | None:
        with self._lock:
            try:
                return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                return None

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class Database:
    """One engine plus its reader and writer session factories."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_bind = self.engine.execution_options(sqlite_immediate=True)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        # On PostgreSQL one statement needs no transaction around it: no BEGIN/ROLLBACK round
        # trips. SQLite keeps its own transaction handling (see _configure_sqlite), which an
        # isolation-level switch would undo on the pooled connection.
        self._plain = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._writer = sessionmaker(write_bind, expire_on_commit=False)

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A plain connection for the hottest reads: no ORM session, and on PostgreSQL no
        transaction (each statement sees its own snapshot)."""
        with self.open_connection() as connection:
            yield connection

    def open_connection(self) -> Connection:
        """`connection()` for a caller that keeps it across reads, and closes it."""
        return self._plain.connect()

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        with self._writer() as session, session.begin():
            yield session

    def maintain(self) -> None:
        """After a bulk load: fold SQLite's write-ahead log back into the database file (readers
        then need not consult it) and refresh planner statistics on either database."""
        raw = self.engine.raw_connection()  # outside any transaction: a checkpoint needs that
        try:
            cursor = raw.cursor()
            if self.is_sqlite:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.execute("PRAGMA optimize")
            else:
                cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()

    async def connect_async(self) -> "psycopg.AsyncConnection[Any]":
        """An asynchronous connection of its own, in autocommit, to this PostgreSQL database:
        for a read that must not wait on a thread (`api.status_cache.LogTail`)."""
        if self.is_sqlite:
            raise ValueError("SQLite has no asynchronous connections here")
        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

    def commit_counter(self) -> CommitCounter | None:
        """A `CommitCounter` for a SQLite file; None on PostgreSQL and for an in-memory
        database, where only a statement can tell what was committed."""
        database = self.engine.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return CommitCounter(database)

    def dispose(self) -> None:
        self.engine.dispose()
