"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served whole by this
server, so that they work on a machine without internet access.

FastAPI's own pages load their scripts, styles and icon from a CDN (and ReDoc its fonts from
Google): offline they stay blank. Here the pages are FastAPI's, built by `get_swagger_ui_html`
and `get_redoc_html` as its guide to self-hosting them shows, and the files they load are the
copies the `fastapi-offline` package installs (Swagger UI 5, which reads OpenAPI 3.1, and ReDoc
2), mounted under /docs/assets. Swagger UI's validator badge, which asks a public validator
about the document, is turned off.
"""

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
"""Where the installed files are: the `static` folder of the `fastapi_offline` package."""
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"


def add_docs_pages(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the pages and their files to `app`, which was made with `docs_url=None` and
    `redoc_url=None` (FastAPI's pages, which load from the CDN)."""
    openapi_url = app.openapi_url
    redirect_url = app.swagger_ui_oauth2_redirect_url
    assert openapi_url is not None
    assert redirect_url is not None
    app.mount(ASSETS_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            oauth2_redirect_url=root + redirect_url,
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    async def swagger_ui_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            with_google_fonts=False,
        )

    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
