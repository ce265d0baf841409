"""Who is calling: authenticate a token or an AK/SK signature, then check the project role.

Both ways end in a `Principal`. Every v5 request names a project in its path, and `require`
answers 404 for a project that does not exist and 403 for one the caller may not act on.

A signature is valid for 15 minutes either side of its X-Sdk-Date, so a captured request could
be sent again within that window. Requests that change something (`once=True`) are therefore
carried out once: their signature is recorded in the database, which every server process
shares, and a second request with it is refused (`ReplayedRequest`, 409).
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stageline.auth import signing
from stageline.auth.backoff import THROTTLED, Backoff, retry_after_seconds
from stageline.auth.roles import Role, allows
from stageline.auth.secrets import derive_secret_key, token_digest
from stageline.auth.ttl_cache import TtlCache
from stageline.domain.errors import (
    Forbidden,
    ProjectNotFound,
    ReplayedRequest,
    TooManyAttempts,
    Unauthenticated,
    excerpt,
)
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity
from stageline.store.queries import signatures as signature_queries

IAM_PREFIX = "Incorrect IAM authentication information: "
SIGNATURE_FAILED = IAM_PREFIX + "verify aksk signature fail"
"""The answer to a wrong signature, and to an AK that does not exist: the same, so that a
caller cannot tell which AKs exist."""
AGENT_KIND = "agent"
SIGNATURE_MEMORY_MS = 2 * signing.MAX_CLOCK_SKEW_SECONDS * 1000
"""How long a used signature is remembered. First seen at `now`, it was signed at most 15
minutes earlier, so copies of it pass the clock check until at most `now` + 30 minutes."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    display_name: str
    token_project_id: str | None = None
    """A project-scoped token acts on that project only; None for unscoped tokens and AK/SK."""
    is_agent: bool = False
    """A build agent's identity: it may claim and report jobs, and nothing else."""
    is_feed: bool = False
    """A feed token (`auth.feed_tokens`): it may read its project's feeds, and nothing else."""


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes


def iso_utc(epoch_ms: int) -> str:
    """`2020-01-04T09:05:22.701000Z`, the IAM token time format."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Authenticator:
    """Checks credentials and roles against the database.

    Positive answers are remembered for `auth_cache_seconds` (default 10) so that a dashboard
    polling every second costs no identity queries: a revoked token, a deleted access key or a
    lowered role takes up to that long to reach a running server. Refusals are never cached, so
    a user just added to a project is let in at once.

    Failed signatures slow down only the client address that sent them, for that access key
    (`Backoff`): whoever does not hold the SK can never lock its owner out, and an address
    made to wait is answered without a database query or an HMAC.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self._master_secret = settings.master_secret()
        ttl_ms = int(settings.auth_cache_seconds * 1000)
        self._tokens: TtlCache[str, tuple[Principal, int]] = TtlCache(ttl_ms=ttl_ms)
        self._access_keys: TtlCache[str, Principal] = TtlCache(ttl_ms=ttl_ms)
        self._roles: TtlCache[tuple[str, str], Role] = TtlCache(ttl_ms=ttl_ms)
        self._signature_failures: Backoff[tuple[str, str]] = Backoff(
            limit=settings.signature_failure_limit,
            max_wait_ms=settings.auth_backoff_max_seconds * 1000,
        )

    def from_token(self, token: str, *, now: int) -> Principal:
        principal = self.cached_token(token, now=now)
        if principal is not None:
            return principal
        digest = token_digest(token)
        loaded = self._load_token(digest)
        self._tokens.put(digest, loaded, now=now)
        return self._unexpired(*loaded, now=now)

    def cached_token(self, token: str, *, now: int) -> Principal | None:
        """The token's principal if this process checked it recently; no I/O."""
        cached = self._tokens.get(token_digest(token), now=now)
        return None if cached is None else self._unexpired(*cached, now=now)

    def revoke_token(self, token: str) -> None:
        """Delete the token (a dashboard logout). Other server processes may still accept it
        from their caches for up to `auth_cache_seconds`."""
        digest = token_digest(token)
        self._tokens.discard(digest)
        with self.db.writer() as session:
            identity.delete_token(session, digest=digest)

    @staticmethod
    def _unexpired(principal: Principal, expires_at: int, *, now: int) -> Principal:
        if expires_at <= now:
            raise Unauthenticated(IAM_PREFIX + f"token expires, expires_at: {iso_utc(expires_at)}")
        return principal

    def _load_token(self, digest: str) -> tuple[Principal, int]:
        with self.db.reader() as session:
            stored = identity.read_token(session, digest=digest)
            user = identity.read_user(session, user_id=stored.user_id) if stored else None
            if stored is None or user is None:
                raise Unauthenticated(IAM_PREFIX + "decrypt token fail")
            principal = Principal(user.id, user.name, user.display_name, stored.project_id)
            return principal, stored.expires_at

    def from_signature(
        self, request: SignedRequest, *, now: int, source: str = "", once: bool = False
    ) -> Principal:
        """The key's principal if the signature checks out; `source` is the client's address,
        which failures are counted against together with the key; with `once`, refuse a
        signature received before."""
        try:
            parsed = signing.parse_authorization(request.headers.get("authorization", ""))
        except signing.SignatureError as error:
            raise Unauthenticated(IAM_PREFIX + error.reason) from None
        access_key = parsed.access_key
        failing = (source, access_key)
        wait_ms = self._signature_failures.wait_ms(failing, now=now)
        if wait_ms:
            raise TooManyAttempts(
                THROTTLED + "too many failed signatures for this access key from this address",
                retry_after=retry_after_seconds(wait_ms),
            )
        principal = self._access_keys.get(access_key, now=now)
        if principal is None:
            principal = self._load_access_key(access_key)
        # An unknown AK goes through the same check (against the SK it would have) and gets the
        # same answer as a known one with a wrong signature: nothing tells which AKs exist.
        try:
            signing.verify(
                request.method,
                request.raw_path,
                signing.parse_query(request.raw_query),
                request.headers,
                request.body,
                lookup_secret=lambda ak: derive_secret_key(self._master_secret, ak),
                now=datetime.fromtimestamp(now / 1000, tz=UTC),
            )
        except signing.SignatureError as error:
            if error.clock_skew:
                raise Unauthenticated(
                    "Incorrect app authentication information: X-Sdk-Date is missing, malformed"
                    " or more than 15 minutes away from the server's time",
                    clock_skew=True,
                ) from None
            # Counted in memory, not written to the database: a flood of forged requests
            # costs no write, and the key itself is never locked.
            self._signature_failures.failed(failing, now=now)
            raise Unauthenticated(SIGNATURE_FAILED) from None
        if principal is None:  # signed with the SK of a key nobody was given: still no
            self._signature_failures.failed(failing, now=now)
            raise Unauthenticated(SIGNATURE_FAILED)
        self._signature_failures.succeeded(failing)
        self._access_keys.put(access_key, principal, now=now)
        if once:
            self._refuse_replay(access_key, parsed.signature, now=now)
        return principal

    def _refuse_replay(self, access_key: str, signature: str, *, now: int) -> None:
        digest = hashlib.sha256(f"{access_key}:{signature}".encode()).hexdigest()
        with self.db.writer() as session:
            first = signature_queries.record_signature(
                session, digest=digest, expires_at=now + SIGNATURE_MEMORY_MS
            )
        if not first:
            raise ReplayedRequest(
                "this signed request was received before and is carried out once (a request"
                " that changes something may not be replayed); sign it again to repeat it:"
                " X-Sdk-Date counts seconds, so identical requests signed in the same second"
                " are one request"
            )

    def forget_used_signatures(self, *, now: int) -> int:
        """Delete the records of signatures no copy of which could pass the clock check now."""
        with self.db.writer() as session:
            return signature_queries.delete_expired_signatures(session, now=now)

    def _load_access_key(self, access_key: str) -> Principal | None:
        """The key's user; None for a key nobody was given (answered as a wrong signature)."""
        with self.db.reader() as session:
            key = identity.read_access_key(session, access_key=access_key)
            if key is None:
                return None
            user = identity.read_user(session, user_id=key.user_id)
            if user is None:
                return None
            return Principal(
                user.id, user.name, user.display_name, is_agent=user.kind == AGENT_KIND
            )

    def cached_role(self, principal: Principal, *, project_id: str, now: int) -> Role | None:
        """The caller's role on the project if this process looked it up recently; no I/O."""
        return self._roles.get((principal.user_id, project_id), now=now)

    def role(self, principal: Principal, *, project_id: str, now: int) -> Role:
        """The caller's role on the project: 404 for an unknown project, 403 for a non-member."""
        held = self.cached_role(principal, project_id=project_id, now=now)
        if held is not None:
            return held
        with self.db.reader() as session:
            if identity.read_project(session, project_id=project_id) is None:
                raise ProjectNotFound(f"project {excerpt(project_id)} not found")
            label = identity.read_role(session, project_id=project_id, user_id=principal.user_id)
        if label is None:
            raise Forbidden(
                f"user {principal.name} is not a member of project {excerpt(project_id)}"
            )
        held = Role.parse(label)
        self._roles.put((principal.user_id, project_id), held, now=now)
        return held

    @staticmethod
    def check(principal: Principal, *, project_id: str, held: Role, needed: Role) -> None:
        """Refuse a build agent, a project-scoped token used elsewhere, or a role below `needed`."""
        if principal.is_agent:
            raise Forbidden(f"{principal.name} is a build agent: it may only claim and report jobs")
        if principal.is_feed:  # never reaches a role check but through `api.deps.read_feed`
            raise Forbidden("a feed token may only read its project's feeds")
        if principal.token_project_id not in (None, project_id):
            raise Forbidden("the token is scoped to another project")
        if not allows(held, needed):
            raise Forbidden(
                f"user {principal.name} is a {held.label} of this project; {needed.label} needed"
            )


def header_list(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI raw headers as a lower-cased dict, values decoded as UTF-8 (how the SDK signs)."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("utf-8", errors="replace")
        result[key] = f"{result[key]},{text}" if key in result else text
    return result
