"""Feed tokens: read-only credentials for one project's feeds, kept as digests."""

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stageline.store.tables import FeedToken


def insert_feed_token(
    session: Session, *, token_id: str, digest: str, project_id: str, note: str, now: int
) -> None:
    session.add(
        FeedToken(id=token_id, digest=digest, project_id=project_id, note=note, created_at=now)
    )
    session.flush()


def read_feed_token(session: Session, *, token_id: str) -> FeedToken | None:
    return session.get(FeedToken, token_id)


def list_feed_tokens(session: Session, *, project_id: str | None = None) -> list[FeedToken]:
    """Of one project or of all, oldest first."""
    query = select(FeedToken).order_by(FeedToken.created_at, FeedToken.id)
    if project_id is not None:
        query = query.where(FeedToken.project_id == project_id)
    return list(session.scalars(query))


def delete_feed_token(session: Session, *, token_id: str) -> bool:
    """Whether there was such a token."""
    result = session.execute(delete(FeedToken).where(FeedToken.id == token_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
