"""Build agents as last seen: written as they claim or heartbeat, read to tell who is connected."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stageline.store.tables import BuildAgent


def update_agent_seen(
    session: Session,
    *,
    name: str,
    pool: str,
    labels: Collection[str],
    now: int,
    claiming: bool,
) -> None:
    """Record that agent `name` was seen at `now`, inserting it if it is new.

    A claim (`claiming`) says which pool and labels the agent has, so they replace what was
    known; a heartbeat only says the agent is alive, and the pool and labels of its jobs are
    what it is known to have until it next claims.
    """
    values: dict[str, Any] = {
        "name": name,
        "pool": pool,
        "labels": sorted(set(labels)),
        "last_seen_at": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(BuildAgent).values(values)
    kept = ("pool", "labels", "last_seen_at") if claiming else ("last_seen_at",)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[BuildAgent.name],
            set_={column: statement.excluded[column] for column in kept},
        )
    )


def list_agents_seen(session: Session, *, since: int) -> list[tuple[str, str, list[str]]]:
    """(name, pool, labels) of the agents seen at or after `since`."""
    query = select(BuildAgent.name, BuildAgent.pool, BuildAgent.labels).where(
        BuildAgent.last_seen_at >= since
    )
    return [(name, pool, list(labels or ())) for name, pool, labels in session.execute(query)]


def count_agents_seen(session: Session, *, since: int) -> int:
    """How many agents were seen at or after `since`."""
    query = select(func.count()).where(BuildAgent.last_seen_at >= since)
    return int(session.scalar(query) or 0)


def delete_agents_gone(session: Session, *, before: int) -> int:
    """Forget agents not seen since `before`."""
    result = session.execute(delete(BuildAgent).where(BuildAgent.last_seen_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
