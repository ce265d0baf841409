"""Leader leases: which server process leads some work, taken and renewed with one statement."""

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stageline.store.tables import LeaderLease


def read_lease(session: Session, *, name: str) -> LeaderLease | None:
    return session.get(LeaderLease, name)


def take_lease(session: Session, *, name: str, holder: str, now: int, until: int) -> bool:
    """Take or renew the lease until `until` if `holder` holds it or it has expired; False if
    another holds it. Conditional UPDATE, else INSERT … ON CONFLICT DO NOTHING: both atomic on
    both databases, so of two processes racing for an expired lease exactly one gets it."""
    renewed = session.execute(
        update(LeaderLease)
        .where(
            LeaderLease.name == name,
            or_(LeaderLease.holder == holder, LeaderLease.expires_at < now),
        )
        .values(holder=holder, expires_at=until)
    )
    if renewed.rowcount:  # type: ignore[attr-defined]
        return True
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(LeaderLease.__table__)
        .values(name=name, holder=holder, expires_at=until)
        .on_conflict_do_nothing(index_elements=[LeaderLease.name])
        .returning(LeaderLease.name)
    )
    return inserted.first() is not None


def release_lease(session: Session, *, name: str, holder: str) -> None:
    """Give the lease up at once (it expires now), if `holder` still holds it."""
    session.execute(
        update(LeaderLease)
        .where(LeaderLease.name == name, LeaderLease.holder == holder)
        .values(expires_at=0)
    )


def read_lease_holder(session: Session, *, name: str, now: int) -> str | None:
    """Who holds the lease now; None if nobody does."""
    row = session.execute(
        select(LeaderLease.holder).where(LeaderLease.name == name, LeaderLease.expires_at >= now)
    ).first()
    return None if row is None else row[0]
