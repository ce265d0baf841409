"""Who is calling: authenticate a token or an AK/SK signature, then check the project role.

Both ways end in a `Principal`. Every v5 request names a project in its path, and `require`
answers 404 for a project that does not exist and 403 for one the caller may not act on.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stageline.auth import signing
from stageline.auth.roles import Role, allows
from stageline.auth.secrets import derive_secret_key, token_digest
from stageline.domain.errors import Forbidden, ProjectNotFound, Unauthenticated
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity

IAM_PREFIX = "Incorrect IAM authentication information: "
FAILED_SIGNATURES_BEFORE_LOCK = 5
LOCK_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    display_name: str
    token_project_id: str | None = None
    """A project-scoped token acts on that project only; None for unscoped tokens and AK/SK."""


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
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self._master_secret = settings.master_secret()

    def from_token(self, token: str, *, now: int) -> Principal:
        with self.db.reader() as session:
            stored = identity.read_token(session, digest=token_digest(token))
            if stored is None:
                raise Unauthenticated(IAM_PREFIX + "decrypt token fail")
            if stored.expires_at <= now:
                raise Unauthenticated(
                    IAM_PREFIX + f"token expires, expires_at: {iso_utc(stored.expires_at)}"
                )
            user = identity.read_user(session, user_id=stored.user_id)
            if user is None:
                raise Unauthenticated(IAM_PREFIX + "decrypt token fail")
            return Principal(user.id, user.name, user.display_name, stored.project_id)

    def from_signature(self, request: SignedRequest, *, now: int) -> Principal:
        try:
            parsed = signing.parse_authorization(request.headers.get("authorization", ""))
        except signing.SignatureError as error:
            raise Unauthenticated(IAM_PREFIX + error.reason) from None
        access_key = parsed.access_key
        with self.db.reader() as session:
            key = identity.read_access_key(session, access_key=access_key)
            if key is None:
                raise Unauthenticated(
                    IAM_PREFIX + f"Get secretKey failed,ak:{access_key},err:ak not exist"
                )
            if key.locked_until is not None and key.locked_until > now:
                raise Unauthenticated(IAM_PREFIX + "AK access failed to reach the limit,forbidden")
            had_failures = key.failed_signatures > 0
            user = identity.read_user(session, user_id=key.user_id)
            assert user is not None, "access keys are deleted with their user"
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
            with self.db.writer() as session:
                identity.record_signature_failure(
                    session,
                    access_key=access_key,
                    now=now,
                    limit=FAILED_SIGNATURES_BEFORE_LOCK,
                    lock_ms=LOCK_MS,
                )
            raise Unauthenticated(IAM_PREFIX + "verify aksk signature fail") from None
        if had_failures:
            with self.db.writer() as session:
                identity.reset_signature_failures(session, access_key=access_key)
        return Principal(user.id, user.name, user.display_name)

    def require(self, principal: Principal, *, project_id: str, needed: Role) -> Role:
        """The caller's role on the project, if it is at least `needed`."""
        with self.db.reader() as session:
            if identity.read_project(session, project_id=project_id) is None:
                raise ProjectNotFound(f"project {project_id} not found")
            label = identity.read_role(session, project_id=project_id, user_id=principal.user_id)
        if principal.token_project_id not in (None, project_id):
            raise Forbidden("the token is scoped to another project")
        if label is None:
            raise Forbidden(f"user {principal.name} is not a member of project {project_id}")
        held = Role.parse(label)
        if not allows(held, needed):
            raise Forbidden(
                f"user {principal.name} is a {held.label} of this project; {needed.label} needed"
            )
        return held


def header_list(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI raw headers as a lower-cased dict, values decoded as UTF-8 (how the SDK signs)."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("utf-8", errors="replace")
        result[key] = f"{result[key]},{text}" if key in result else text
    return result
