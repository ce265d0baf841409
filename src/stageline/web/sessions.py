"""Browser sessions: the IAM token in an HttpOnly cookie, and a CSRF token derived from it.

The cookie holds the same token `POST /v3/auth/tokens` issues (stored hashed, with its expiry),
so a session needs no table of its own and logging out of the API and of the dashboard is one
thing. Every request that changes something must also carry the CSRF token: an HMAC of the
session token under a key derived from the master secret, which a page of another origin can
neither read nor compute. It goes in a hidden form field or the `X-CSRF-Token` header and is
compared in constant time.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from stageline.api.deps import Caller, Services
from stageline.api.deps import caller_on as api_caller_on
from stageline.auth.principals import Principal
from stageline.auth.roles import Role
from stageline.domain.errors import DomainError, Forbidden, Unauthenticated

COOKIE = "stageline_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_LABEL = b"stageline dashboard csrf v1"
SESSION_REQUIRED = "log in to the dashboard first (no valid session cookie)"


class LoginRequired(Exception):
    """A page was asked for without a valid session: answered with a redirect to the login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class WebSession:
    token: str
    principal: Principal
    csrf: str


def csrf_key(master_secret: bytes) -> bytes:
    """A key of its own, so that a CSRF token reveals nothing usable elsewhere."""
    return hmac.new(master_secret, _CSRF_LABEL, hashlib.sha256).digest()


def csrf_token(key: bytes, session_token: str) -> str:
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def read_session(request: Request) -> WebSession | None:
    """The session the cookie names, or None when there is none or its token is not valid."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services = services_of(request)
    now = services.clock()
    try:
        principal = services.authenticator.cached_token(token, now=now)
        if principal is None:
            principal = await run_in_threadpool(services.authenticator.from_token, token, now=now)
    except DomainError:
        return None
    if principal.is_agent:
        return None
    key: bytes = request.app.state.csrf_key
    return WebSession(token=token, principal=principal, csrf=csrf_token(key, token))


async def page_session(request: Request) -> WebSession:
    """For pages: without a session, the browser is sent to the login page and back."""
    session = await read_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return session


async def api_session(request: Request) -> WebSession:
    """For the dashboard's streams and actions: without a session, a 401 error body."""
    session = await read_session(request)
    if session is None:
        raise Unauthenticated(SESSION_REQUIRED)
    return session


def refuse_other_origins(request: Request) -> None:
    """A login form posted from another site (which would log the victim into the attacker's
    account) is refused when the browser names its origin; there is no session to bind a CSRF
    token to yet."""
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise Forbidden("this form may only be sent from the dashboard's own pages")


def check_csrf(session: WebSession, given: str | None) -> None:
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise Forbidden("the CSRF token is missing or wrong: reload the page and try again")


async def changing_session(request: Request) -> WebSession:
    """For actions sent by the pages' JavaScript: a session and its CSRF token in the header."""
    session = await api_session(request)
    check_csrf(session, request.headers.get(CSRF_HEADER))
    return session


async def caller_on(request: Request, session: WebSession, project_id: str, needed: Role) -> Caller:
    """The session's caller on `project_id`, checked as the API checks it (404 for an unknown
    project, 403 for a non-member or a role below `needed`)."""
    services = services_of(request)
    return await api_caller_on(
        services, session.principal, project_id, needed, now=services.clock()
    )


def login_path(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Only a path of this site: never `//host` or a URL (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


PageSession = Annotated[WebSession, Depends(page_session)]
"""A page's session: without one, the browser is sent to the login page."""
ApiSession = Annotated[WebSession, Depends(api_session)]
"""A script's session (streams, fetches): without one, a 401 with the error body."""
ChangingSession = Annotated[WebSession, Depends(changing_session)]
"""A session whose request changes something: its CSRF token is checked."""
