"""Dependencies every route declares: the services, the caller, and the role it needs."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from stageline.api.claim_signal import ClaimSignal
from stageline.api.client_address import client_address
from stageline.api.live import LiveChanges
from stageline.api.logins import Logins
from stageline.api.render import Renderer
from stageline.api.status_cache import LatestRuns, LogTail
from stageline.auth.feed_tokens import FeedTokens, is_feed_token
from stageline.auth.principals import (
    IAM_PREFIX,
    Authenticator,
    Principal,
    SignedRequest,
    header_list,
)
from stageline.auth.roles import Role
from stageline.auth.signing import HEADER_CONTENT_SHA256, UNSIGNED_BODY, UNSIGNED_PAYLOAD
from stageline.auth.vault import Vault
from stageline.domain.errors import Forbidden, Unauthenticated
from stageline.engine.clock import Clock
from stageline.engine.dispatcher import Dispatcher
from stageline.engine.runs import RunEngine
from stageline.engine.webhooks import Webhooks
from stageline.settings import Settings
from stageline.store.blobs import Blobs
from stageline.store.database import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    engine: RunEngine
    dispatcher: Dispatcher
    claim_signal: ClaimSignal
    blobs: Blobs
    authenticator: Authenticator
    feed_tokens: FeedTokens
    logins: Logins
    renderer: Renderer
    latest_runs: LatestRuns
    log_tail: LogTail
    clock: Clock
    vault: Vault
    webhooks: Webhooks
    live: LiveChanges
    registry: CollectorRegistry
    """What this process counts for GET /metrics (`api.scrape`)."""


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services_on_the_loop(request: Request) -> Services:
    # `async` only so that FastAPI calls it on the event loop: it would run a plain function on
    # its thread pool, a hand-over that cost more than many a handler's own work.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(_services_on_the_loop)]


async def authenticate(request: Request) -> Principal:
    """X-Auth-Token if present, else an SDK-HMAC-SHA256 signature, else 401. For routes that
    only read, or whose repeats change nothing (an agent's numbered reports, heartbeats)."""
    return await _authenticate(request, once=False)


async def authenticate_once(request: Request) -> Principal:
    """`authenticate`, for routes that change something: a signed request is carried out once,
    and the same signature again is a 409 (`Authenticator.from_signature`)."""
    return await _authenticate(request, once=True)


async def _authenticate(request: Request, *, once: bool) -> Principal:
    services = services_of(request)
    return await _principal(request, services, services.clock(), once=once)


async def _principal(
    request: Request, services: Services, now: int, *, once: bool = False
) -> Principal:
    token = request.headers.get("x-auth-token")
    if token:
        # A recently checked token costs no I/O: answer it on the event loop, without a thread.
        principal = services.authenticator.cached_token(token, now=now)
        if principal is not None:
            return principal
        return await run_in_threadpool(services.authenticator.from_token, token, now=now)
    if "authorization" in request.headers:
        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers = header_list(scope["headers"])
        signed = SignedRequest(
            method=request.method,
            raw_path=raw_path.decode("latin-1"),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=await _signed_body(request, headers),
        )
        return await run_in_threadpool(
            services.authenticator.from_signature,
            signed,
            now=now,
            source=client_address(scope),
            once=once,
        )
    raise Unauthenticated(IAM_PREFIX + "x-auth-token not found")


async def _signed_body(request: Request, headers: dict[str, str]) -> bytes:
    """The body as the signature covers it. With an unsigned payload (artifact uploads) only
    whether there is one matters, so a large upload is not read here but streamed by its route.
    """
    if headers.get(HEADER_CONTENT_SHA256.lower()) != UNSIGNED_PAYLOAD:
        return await request.body()
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    return UNSIGNED_BODY if has_body else b""


@dataclass(frozen=True)
class Caller:
    principal: Principal
    project_id: str
    role: Role


async def caller_on(
    services: Services, principal: Principal, project_id: str, needed: Role, *, now: int
) -> Caller:
    """`principal` as a caller on `project_id`, its role held at least `needed` (404 for an
    unknown project, 403 for a non-member or a lower role); a recently read role costs no I/O."""
    authenticator = services.authenticator
    held = authenticator.cached_role(principal, project_id=project_id, now=now)
    if held is None:
        held = await run_in_threadpool(
            authenticator.role, principal, project_id=project_id, now=now
        )
    authenticator.check(principal, project_id=project_id, held=held, needed=needed)
    return Caller(principal=principal, project_id=project_id, role=held)


def requires(needed: Role, *, changes: bool) -> Callable[..., Awaitable[Caller]]:
    """A dependency that authenticates and checks `needed` on the path's project; for a route
    that `changes` something, a signed request is carried out once.

    It authenticates itself rather than declaring `authenticate` as a sub-dependency: each level
    of FastAPI's dependency resolution reads the path, query, headers and cookies of the request
    again, and the second level cost about 14 µs of a request answered from the caches.
    """

    async def check(project_id: str, request: Request) -> Caller:
        services = services_of(request)
        now = services.clock()
        principal = await _principal(request, services, now, once=changes)
        return await caller_on(services, principal, project_id, needed, now=now)

    CARRIED_OUT_ONCE[check] = changes
    return check


CARRIED_OUT_ONCE: dict[Callable[..., Awaitable[Caller]], bool] = {}
"""Each role check `requires` made, and whether it carries out a signed request once."""


# What a viewer may call only reads (some reads are POSTs: batch status, lists, log windows, which
# pollers send again and again); everything that needs a developer or an admin changes state.
# tests/integration/test_replays.py holds every route to this.
ViewerCaller = Annotated[Caller, Depends(requires(Role.VIEWER, changes=False))]
DeveloperCaller = Annotated[Caller, Depends(requires(Role.DEVELOPER, changes=True))]
AdminCaller = Annotated[Caller, Depends(requires(Role.ADMIN, changes=True))]


FEED_CHALLENGE = 'Bearer realm="stageline feeds"'
"""What a 401 of a feed tells its client: send a token (cctray.org asks feeds for a challenge,
never a redirect to a login page)."""


async def read_feed(project_id: str, request: Request) -> Caller:
    """A reader of the project's feeds (GET status, its stream, cc.xml, badges): a viewer who
    sends X-Auth-Token, `Authorization: Bearer <IAM token>` or an AK/SK signature, or a feed
    token of this project, as `?token=` or `Authorization: Bearer`. A feed token is accepted
    here and nowhere else. Every 401 carries `WWW-Authenticate`.
    """
    services = services_of(request)
    now = services.clock()
    try:
        principal = await _feed_principal(request, services, now)
    except Unauthenticated as error:
        error.challenge = FEED_CHALLENGE
        raise
    if principal.is_feed:
        if principal.token_project_id != project_id:
            raise Forbidden("the feed token belongs to another project")
        return Caller(principal=principal, project_id=project_id, role=Role.VIEWER)
    return await caller_on(services, principal, project_id, Role.VIEWER, now=now)


async def _feed_principal(request: Request, services: Services, now: int) -> Principal:
    token = request.query_params.get("token")
    authorization = request.headers.get("authorization", "")
    if token is None and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
        if not is_feed_token(token):  # an IAM token, sent the standard way
            principal = services.authenticator.cached_token(token, now=now)
            if principal is not None:
                return principal
            return await run_in_threadpool(services.authenticator.from_token, token, now=now)
    if token is not None:
        feed_tokens = services.feed_tokens
        principal = feed_tokens.cached(token, now=now)
        if principal is not None:
            return principal
        return await run_in_threadpool(feed_tokens.check, token, now=now)
    return await _principal(request, services, now)


CARRIED_OUT_ONCE[read_feed] = False
FeedReader = Annotated[Caller, Depends(read_feed)]
"""The caller of a feed route: see `read_feed`."""
