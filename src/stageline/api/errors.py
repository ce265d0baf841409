"""Every failure as `{"error_code", "error_msg"}` with an HTTP status >= 400 and an X-Request-Id.

The table below is the one place that maps domain errors to statuses and codes. Unexpected
exceptions are logged with their request ID and answered with a generic 500, never a traceback.
"""

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stageline.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PipelineNotFound,
    ProjectNotFound,
    ReplayedRequest,
    RunNotAccepted,
    StaleDispatch,
    Unauthenticated,
)
from stageline.schemas.responses.errors import ErrorBody, RunNotAcceptedDetail

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 12 * 1024 * 1024
"""The API gateway's limit for signed bodies, applied to every request."""

ERROR_TABLE: tuple[tuple[type[DomainError], int, str], ...] = (
    (Unauthenticated, 401, "APIGW.0301"),
    (Forbidden, 403, "DEVCP.00014031"),
    (ProjectNotFound, 404, "DEVPIPE.00011412"),
    (PipelineNotFound, 404, "DEVPIPE.00011401"),
    (NotFound, 404, "DEVCP.00012002"),
    (InvalidInput, 400, "DEVCP.00021400"),
    (RunNotAccepted, 409, "DEVPIPE.00011169"),
    (StaleDispatch, 409, "STAGELINE.AGENT.0409"),
    (ReplayedRequest, 409, "STAGELINE.AUTH.0409"),
    (Conflict, 409, "DEVPIPE.00011409"),
)
"""First matching class wins, so subclasses come before their bases."""
CLOCK_SKEW_CODE = "APIGW.0303"
VALIDATION_CODE = "DEVCP.00021400"
NO_ROUTE_CODE = "APIGW.0101"
TOO_LARGE_CODE = "APIGW.0201"
INTERNAL_CODE = "DEVCP.00010000"


def request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def error_response(
    scope: Scope,
    status: int,
    code: str,
    message: str,
    not_accepted: RunNotAcceptedDetail | None = None,
) -> Response:
    body: ErrorBody = {"error_code": code, "error_msg": message}
    if code.startswith("APIGW."):
        body["request_id"] = request_id(scope)
    if not_accepted is not None:
        body["error"] = not_accepted
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    if isinstance(error, Unauthenticated) and error.clock_skew:
        return error_response(request.scope, 401, CLOCK_SKEW_CODE, error.message)
    not_accepted: RunNotAcceptedDetail | None = None
    if isinstance(error, RunNotAccepted):
        not_accepted = {"pipeline_run_id": error.run_id, "queue_id": error.run_id}
    for cls, status, code in ERROR_TABLE:
        if isinstance(error, cls):
            return error_response(request.scope, status, code, error.message, not_accepted)
    return error_response(request.scope, 400, VALIDATION_CODE, error.message)


def field_path(location: Sequence[Any]) -> str:
    """("body", "variables", 0, "name") -> "variables[0].name"; the bare body is "body"."""
    parts = list(location)
    if parts and parts[0] in {"body", "query", "path", "header"}:
        where = parts.pop(0)
        if not parts:
            return "body" if where == "body" else str(where)
    path = "body" if parts and isinstance(parts[0], int) else ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems: list[dict[str, Any]] = list(error.errors())
    first: dict[str, Any] = problems[0] if problems else {"loc": ("body",), "msg": "invalid"}
    if first.get("type") == "missing" and tuple(first["loc"]) == ("body",):
        return error_response(request.scope, 400, VALIDATION_CODE, "body: a JSON body is required")
    content_type = request.headers.get("content-type", "")
    if first["loc"] and first["loc"][0] == "body" and "json" not in content_type.lower():
        return error_response(
            request.scope,
            415,
            VALIDATION_CODE,
            f"body: send JSON with Content-Type: application/json (got {content_type or 'none'!r})",
        )
    if first.get("type") == "json_invalid":
        message = "request body is not valid JSON"
    elif first.get("type") == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern", "")
        message = f"{field_path(first['loc'])}: {first['input']!r} does not match {pattern}"
    else:
        message = f"{field_path(first['loc'])}: {first['msg']}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s))"
    return error_response(request.scope, 400, VALIDATION_CODE, message)


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return error_response(request.scope, 404, NO_ROUTE_CODE, "API not found")
    if error.status_code == 405:
        return error_response(
            request.scope, 405, NO_ROUTE_CODE, f"method {request.method} not allowed here"
        )
    return error_response(request.scope, error.status_code, VALIDATION_CODE, str(error.detail))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class RequestIdMiddleware:
    """Give every request an ID, echo it as X-Request-Id, refuse oversized bodies early, and turn
    an unexpected exception into a logged, generic 500 (never a traceback to the client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = rid
        header = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", header)]
            await send(message)

        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            response = error_response(
                scope, 413, TOO_LARGE_CODE, f"request body larger than {MAX_BODY_BYTES} bytes"
            )
            await response(scope, receive, send_with_id)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            log.exception("request %s failed", rid)
            if not started:
                response = error_response(
                    scope,
                    500,
                    INTERNAL_CODE,
                    "internal error; quote the request ID to the operator",
                )
                await response(scope, receive, send_with_id)
