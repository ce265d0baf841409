"""Feed tokens: read-only credentials for one project's feeds, made to sit in a URL.

A status badge in a README is fetched by an image proxy that sends no headers, and a wall
monitor's cc.xml URL is typed once into CCMenu or Nevergreen; both carry their credential in the
query (`?token=`). Such a token is written into pages and configuration files, so it may do as
little as possible: read the feeds (status polling, cc.xml, badges) of the one project it was
made for. Every other route reads credentials only from headers it does not accept.

The token is `slf_<id>_<secret>`: the ID finds the row, and the SHA-256 digest of the whole
token is compared in constant time with the one kept. The secret itself is never stored.
"""

import hmac
import re
import secrets
from dataclasses import dataclass

from stageline.auth.principals import Principal
from stageline.auth.secrets import token_digest
from stageline.auth.ttl_cache import TtlCache
from stageline.domain.errors import (
    InvalidInput,
    NotFound,
    ProjectNotFound,
    Unauthenticated,
    excerpt,
)
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.ids import new_id
from stageline.store.queries import feed_tokens as feed_token_queries
from stageline.store.queries import identity

PREFIX = "slf_"
_SHAPE = re.compile(r"slf_([0-9a-f]{32})_[A-Za-z0-9_-]{43}")
NOTE_MAX_CHARS = 128
REFUSED = "Incorrect IAM authentication information: the feed token is unknown or revoked"


def is_feed_token(text: str) -> bool:
    return text.startswith(PREFIX)


@dataclass(frozen=True)
class FeedTokenRead:
    token_id: str
    project_id: str
    note: str
    created_at: int


@dataclass(frozen=True)
class NewFeedToken:
    token_id: str
    token: str
    """Shown once: only its digest is kept."""


def create_feed_token(db: Database, *, project_id: str, note: str, now: int) -> NewFeedToken:
    if len(note) > NOTE_MAX_CHARS:
        raise InvalidInput(f"note: at most {NOTE_MAX_CHARS} characters")
    token_id = new_id()
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    with db.writer() as session:
        if identity.read_project(session, project_id=project_id) is None:
            raise ProjectNotFound(f"project {excerpt(project_id)} not found")
        feed_token_queries.insert_feed_token(
            session,
            token_id=token_id,
            digest=token_digest(token),
            project_id=project_id,
            note=note,
            now=now,
        )
    return NewFeedToken(token_id, token)


def list_feed_tokens(db: Database, *, project_id: str | None = None) -> list[FeedTokenRead]:
    with db.reader() as session:
        rows = feed_token_queries.list_feed_tokens(session, project_id=project_id)
        return [FeedTokenRead(r.id, r.project_id, r.note, r.created_at) for r in rows]


def revoke_feed_token(db: Database, *, token_id: str) -> None:
    """Delete the token; servers that checked it lately accept it for `auth_cache_seconds`."""
    with db.writer() as session:
        if not feed_token_queries.delete_feed_token(session, token_id=token_id):
            raise NotFound(f"feed token {excerpt(token_id)} not found")


class FeedTokens:
    """Checks feed tokens; tokens found good are remembered for `auth_cache_seconds`, like
    IAM tokens (`Authenticator`), so a wall of badges costs no queries. Refusals are not."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self._known: TtlCache[str, tuple[str, str]] = TtlCache(
            ttl_ms=int(settings.auth_cache_seconds * 1000)
        )

    def cached(self, token: str, *, now: int) -> Principal | None:
        """The token's principal if this process checked it lately; no I/O."""
        match = _SHAPE.fullmatch(token)
        known = None if match is None else self._known.get(match.group(1), now=now)
        if match is None or known is None:
            return None
        return _principal(match.group(1), token, *known)

    def check(self, token: str, *, now: int) -> Principal:
        """The principal of a feed token, read from the database (ask `cached` first): it reads
        the feeds of its project, nothing else."""
        match = _SHAPE.fullmatch(token)
        if match is None:
            raise Unauthenticated(REFUSED)
        token_id = match.group(1)
        with self.db.reader() as session:
            row = feed_token_queries.read_feed_token(session, token_id=token_id)
            known = None if row is None else (row.digest, row.project_id)
        if known is None:
            raise Unauthenticated(REFUSED)
        principal = _principal(token_id, token, *known)
        self._known.put(token_id, known, now=now)
        return principal


def _principal(token_id: str, token: str, digest: str, project_id: str) -> Principal:
    if not hmac.compare_digest(token_digest(token), digest):
        raise Unauthenticated(REFUSED)
    name = f"feed-token-{token_id[:8]}"
    return Principal(token_id, name, name, token_project_id=project_id, is_feed=True)
