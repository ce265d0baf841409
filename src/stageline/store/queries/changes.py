"""The change log (`status_change`): append in the writer's transaction, tail, read a run's history.

On PostgreSQL, concurrent transactions could commit their changes out of `seq` order, and a reader
that saw seq 11 before seq 10 committed would skip 10 for ever. Appends therefore take a
transaction-scoped advisory lock first: the lock is held until commit, so changes become visible
in `seq` order. The same transaction NOTIFYs `stageline_changes`, which PostgreSQL delivers only
once it commits. On SQLite writers are serialized anyway (BEGIN IMMEDIATE).
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.orm import Session

from stageline.store.tables import StatusChange

DELETED = "DELETED"
"""`to_status` of a pipeline's deletion."""
NOTIFY_CHANNEL = "stageline_changes"
APPEND_LOCK_KEY = 0x5354_4147_454C  # "STAGEL": one key, held by each appending transaction
_LOCK = text(f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})")
_NOTIFY = text(f"NOTIFY {NOTIFY_CHANNEL}")
_INSERT = insert(StatusChange)


def append_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append change rows (StatusChange columns but `seq`), in order, to the caller's transaction.

    Call it last in the transaction: on PostgreSQL the append lock is held until commit.
    """
    # Core on the session's connection: the ORM's bulk-insert path costs more than the insert.
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        connection.execute(_LOCK)
    connection.execute(_INSERT, list(rows))
    if postgresql:
        connection.execute(_NOTIFY)


def latest_seq(connection: Connection) -> int:
    """The highest sequence number in the log (0 when it is empty)."""
    return int(
        connection.execute(select(func.coalesce(func.max(StatusChange.seq), 0))).scalar_one()
    )


_SINCE_SQL = (
    "SELECT seq, pipeline_id FROM status_change WHERE seq > {mark} ORDER BY seq LIMIT {mark}"
)


def pipelines_changed_since(
    connection: Connection, *, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """(seq, pipeline_id) of the changes after `after_seq`, oldest first, at most `limit`.

    Plain SQL: it runs on every batch-status request, where compiling a statement costs more
    than the primary-key range scan itself.
    """
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    rows = connection.exec_driver_sql(_SINCE_SQL.format(mark=mark), (after_seq, limit)).all()
    return [(row[0], row[1]) for row in rows]


async def pipelines_changed_since_on(
    connection: "psycopg.AsyncConnection[Any]", *, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """`pipelines_changed_since` on an asynchronous PostgreSQL connection."""
    cursor = await connection.execute(_SINCE_SQL.format(mark="%s"), (after_seq, limit))
    return [(row[0], row[1]) for row in await cursor.fetchall()]


async def latest_seq_on(connection: "psycopg.AsyncConnection[Any]") -> int:
    """`latest_seq` on an asynchronous PostgreSQL connection."""
    cursor = await connection.execute("SELECT coalesce(max(seq), 0) FROM status_change")
    row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


def list_run_changes(
    session: Session, *, run_id: str, after_seq: int = 0, limit: int = 1000
) -> list[StatusChange]:
    """A run's history, oldest first."""
    query = (
        select(StatusChange)
        .where(StatusChange.run_id == run_id, StatusChange.seq > after_seq)
        .order_by(StatusChange.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def read_last_change_at(
    session: Session, *, run_id: str, entity_id: str, to_status: str
) -> int | None:
    """When the run's `entity_id` last changed to `to_status`; None if the log no longer (or
    never) tells."""
    query = select(func.max(StatusChange.at)).where(
        StatusChange.run_id == run_id,
        StatusChange.entity_id == entity_id,
        StatusChange.to_status == to_status,
    )
    return session.scalar(query)


def prune_changes(session: Session, *, before: int, batch: int = 10_000) -> int:
    """Delete up to `batch` of the oldest changes made before `before` (epoch ms); the newest
    change is always kept, so that sequence numbers never start over."""
    newest = session.scalar(select(func.max(StatusChange.seq)))
    if newest is None:
        return 0
    doomed = (
        select(StatusChange.seq)
        .where(StatusChange.at < before, StatusChange.seq < newest)
        .order_by(StatusChange.seq)
        .limit(batch)
        .scalar_subquery()
    )
    result = session.execute(delete(StatusChange).where(StatusChange.seq.in_(doomed)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Change(NamedTuple):
    """One committed status change, as the live feed delivers it."""

    seq: int
    project_id: str
    pipeline_id: str
    run_id: str | None
    entity: str
    entity_id: str
    to_status: str


_CHANGE_COLUMNS = (
    StatusChange.seq,
    StatusChange.project_id,
    StatusChange.pipeline_id,
    StatusChange.run_id,
    StatusChange.entity,
    StatusChange.entity_id,
    StatusChange.to_status,
)


def changes_after(connection: Connection, *, after_seq: int, limit: int = 1000) -> list[Change]:
    """The changes after `after_seq`, oldest first."""
    query = (
        select(*_CHANGE_COLUMNS)
        .where(StatusChange.seq > after_seq)
        .order_by(StatusChange.seq)
        .limit(limit)
    )
    return [Change(*row) for row in connection.execute(query)]


def pipelines_changed_after(
    connection: Connection, *, after_seq: int, pipeline_ids: Sequence[str]
) -> set[str] | None:
    """Which of these pipelines changed after `after_seq`; None when the log no longer reaches
    back that far (it was pruned), so that any of them may have."""
    oldest = connection.execute(select(func.min(StatusChange.seq))).scalar_one()
    if oldest is None or oldest > after_seq + 1:
        return None
    query = (
        select(StatusChange.pipeline_id)
        .distinct()
        .where(StatusChange.seq > after_seq, StatusChange.pipeline_id.in_(pipeline_ids))
    )
    return set(connection.scalars(query))
