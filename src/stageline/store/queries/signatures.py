"""Signatures of state-changing requests already received, so that a replay is refused."""

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stageline.store.tables import UsedSignature


def record_signature(session: Session, *, digest: str, expires_at: int) -> bool:
    """Record a signature's digest; False if it was recorded before. One statement, atomic on
    both databases: of two processes receiving the same request at once, exactly one wins.
    Whether a row went in is read from RETURNING, since psycopg reports no row count for an
    INSERT … ON CONFLICT DO NOTHING."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(UsedSignature.__table__)
        .values(digest=digest, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[UsedSignature.digest])
        .returning(UsedSignature.digest)
    )
    return session.execute(statement).first() is not None


def delete_expired_signatures(session: Session, *, now: int) -> int:
    result = session.execute(delete(UsedSignature).where(UsedSignature.expires_at < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
