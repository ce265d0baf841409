"""The server's app: the API with the dashboard on top (`stageline serve` serves this one).

The dashboard's routes are left out of the OpenAPI document: they are pages and the pages'
own streams and actions, not API. Its pages send a Content-Security-Policy that allows nothing
but this server, so a page can never load anything from the network, nor run inline script.
"""

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stageline.api.app import create_app as create_api_app
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.web import login_pages, pipeline_pages, run_page, run_streams, wall
from stageline.web.sessions import LoginRequired, csrf_key, login_path

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
DASHBOARD_PATHS = ("/login", "/logout", "/projects/", "/static/")


def _login_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    return RedirectResponse(login_path(error.next_path), status_code=303)


class SecurityHeaders:
    """The CSP and friends on every dashboard response; API requests pass untouched (they
    are the hot path, and JSON needs none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/" or path.startswith(DASHBOARD_PATHS)):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    app.state.csrf_key = csrf_key(settings.master_secret())
    app.add_exception_handler(LoginRequired, _login_required)
    for module in (login_pages, wall, pipeline_pages, run_page, run_streams):
        app.include_router(module.router)  # each declared with include_in_schema=False
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    app = create_api_app(settings, db=db)
    install_dashboard(app, settings)
    return app


def worker_app() -> FastAPI:
    """The app of one of several worker processes (`serve --workers N`): settings from the
    environment."""
    return create_app(Settings())
