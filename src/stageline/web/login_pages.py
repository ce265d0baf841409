"""Log in, log out, and the landing page that lists the projects of whoever is logged in.

A login is the API's password login (`api.logins`: the same accounts, the same guard against
guessing); its token goes into the session cookie.
"""

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from stageline.api.client_address import client_address
from stageline.domain.errors import DomainError, TooManyAttempts
from stageline.store.queries import identity
from stageline.web.sessions import (
    COOKIE,
    CSRF_FIELD,
    PageSession,
    check_csrf,
    read_session,
    refuse_other_origins,
    safe_next,
    services_of,
)
from stageline.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, first value of each field (no multipart:
    the dashboard's forms hold no files)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if await read_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "error": None}, session=None)


@router.post("/login")
async def log_in(request: Request) -> Response:
    refuse_other_origins(request)
    services = services_of(request)
    form = await read_form(request)
    name, password = form.get("username", ""), form.get("password", "")
    target = safe_next(form.get("next"))
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "password": password}},
            }
        }
    }
    try:
        token, _ = await services.logins.issue_token(body, source=client_address(request.scope))
    except DomainError as error:
        status = 429 if isinstance(error, TooManyAttempts) else 401
        message = error.message if status == 429 else "The user name or password is wrong."
        context = {"next": target, "error": message, "username": name}
        return render(request, "login.html", context, session=None, status_code=status)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=services.settings.token_ttl_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=services.settings.effective_public_base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
async def log_out(request: Request, session: PageSession) -> Response:
    form = await read_form(request)
    check_csrf(session, form.get(CSRF_FIELD))
    await run_in_threadpool(services_of(request).authenticator.revoke_token, session.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
async def projects_page(request: Request, session: PageSession) -> Response:
    """The projects the user is a member of; straight to the wall when there is one."""
    services = services_of(request)

    def read() -> list[tuple[str, str, str]]:
        with services.db.reader() as db_session:
            return identity.list_memberships(db_session, user_id=session.principal.user_id)

    projects = await run_in_threadpool(read)
    if len(projects) == 1:
        return RedirectResponse(f"/projects/{projects[0][0]}", status_code=303)
    return render(request, "projects.html", {"projects": projects}, session=session)
