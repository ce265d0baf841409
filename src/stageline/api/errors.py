"""Every failure as `{"error_code", "error_msg"}` with an HTTP status >= 400 and an X-Request-Id.

The table below is the one place that maps domain errors to statuses and codes. Unexpected
exceptions are logged with their request ID and answered with a generic 500, never a traceback.
"""

import itertools
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
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
    TooManyAttempts,
    Unauthenticated,
    UnsupportedMediaType,
    excerpt,
)
from stageline.schemas.responses.errors import ErrorBody, RunNotAcceptedDetail

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 12 * 1024 * 1024
"""The API gateway's limit for request bodies, applied by `api.body_limit` to every route that
has no limit of its own."""

ERROR_TABLE: tuple[tuple[type[DomainError], int, str], ...] = (
    (Unauthenticated, 401, "APIGW.0301"),
    (Forbidden, 403, "DEVCP.00014031"),
    (ProjectNotFound, 404, "DEVPIPE.00011412"),
    (PipelineNotFound, 404, "DEVPIPE.00011401"),
    (NotFound, 404, "DEVCP.00012002"),
    (UnsupportedMediaType, 415, "DEVCP.00021400"),
    (InvalidInput, 400, "DEVCP.00021400"),
    (RunNotAccepted, 409, "DEVPIPE.00011169"),
    (StaleDispatch, 409, "STAGELINE.AGENT.0409"),
    (ReplayedRequest, 409, "STAGELINE.AUTH.0409"),
    (Conflict, 409, "DEVPIPE.00011409"),
    (TooManyAttempts, 429, "APIGW.0308"),
)
"""First matching class wins, so subclasses come before their bases."""
CLOCK_SKEW_CODE = "APIGW.0303"
VALIDATION_CODE = "DEVCP.00021400"
NO_ROUTE_CODE = "APIGW.0101"
TOO_LARGE_CODE = "APIGW.0201"
INTERNAL_CODE = "DEVCP.00010000"
MESSAGE_MAX_CHARS = 1024
"""No error message is longer: each quotes at most a short excerpt of the caller's input, and
this catches any that would still grow with it."""


def request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def error_response(
    scope: Scope,
    status: int,
    code: str,
    message: str,
    not_accepted: RunNotAcceptedDetail | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: ErrorBody = {"error_code": code, "error_msg": excerpt(message, MESSAGE_MAX_CHARS)}
    if code.startswith("APIGW."):
        body["request_id"] = request_id(scope)
    if not_accepted is not None:
        body["error"] = not_accepted
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    if isinstance(error, Unauthenticated) and error.clock_skew:
        return error_response(request.scope, 401, CLOCK_SKEW_CODE, error.message)
    not_accepted: RunNotAcceptedDetail | None = None
    if isinstance(error, RunNotAccepted):
        not_accepted = {"pipeline_run_id": error.run_id, "queue_id": error.run_id}
    for cls, status, code in ERROR_TABLE:
        if isinstance(error, cls):
            response = error_response(request.scope, status, code, error.message, not_accepted)
            if isinstance(error, TooManyAttempts):
                response.headers["Retry-After"] = str(error.retry_after)
            if isinstance(error, Unauthenticated) and error.challenge is not None:
                response.headers["WWW-Authenticate"] = error.challenge
            return response
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
            "body: send JSON with Content-Type: application/json"
            f" (got {excerpt(content_type or 'none')!r})",
        )
    if first.get("type") == "json_invalid":
        message = "request body is not valid JSON"
    elif first.get("type") == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern", "")
        quoted = excerpt(first["input"]) if isinstance(first["input"], str) else first["input"]
        message = f"{field_path(first['loc'])}: {quoted!r} does not match {pattern}"
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
            request.scope,
            405,
            NO_ROUTE_CODE,
            f"method {excerpt(request.method)} not allowed here",
            headers={"Allow": ", ".join(_allowed_methods(request))},
        )
    return error_response(
        request.scope, error.status_code, VALIDATION_CODE, str(error.detail), headers=error.headers
    )


def _allowed_methods(request: Request) -> list[str]:
    """The methods the API document gives this path. (The router's own `Allow` names only the
    first route that matched, and GET, PUT and DELETE of a pipeline are three.) Where several
    templates match, the one with the fewest parameters names it: `…/pipelines/list` is that
    operation, not a pipeline whose ID is "list"."""
    table: list[tuple[int, re.Pattern[str], set[str]]] | None = getattr(
        request.app.state, "allowed_methods", None
    )
    if table is None:
        table = request.app.state.allowed_methods = _method_table(request.app.openapi())
    path = request.scope["path"]
    matches = [(params, methods) for params, pattern, methods in table if pattern.fullmatch(path)]
    fewest = min((params for params, _ in matches), default=0)
    return sorted({m for params, methods in matches if params == fewest for m in methods})


def _method_table(document: dict[str, Any]) -> list[tuple[int, re.Pattern[str], set[str]]]:
    table = []
    for template, operations in document.get("paths", {}).items():
        parts = template.split("/")
        pattern = "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        params = sum(p.startswith("{") for p in parts)
        table.append((params, re.compile(pattern), {method.upper() for method in operations}))
    return table


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class _RequestIds:
    """Unique request IDs, 32 hex digits like `secrets.token_hex(16)`, for a counter's price.

    A random prefix per process (drawn again in a forked child) followed by a counter: distinct
    across the workers of a server and across restarts, with no system call per request. They
    identify a request in the logs; they are not secrets.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter: Iterator[int] = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_request_ids = _RequestIds()


class RequestIdMiddleware:
    """Give every request an ID, echo it as X-Request-Id, refuse requests holding NUL characters,
    and turn an unexpected exception into a logged, generic 500 (never a traceback to the
    client). Body sizes: `api.body_limit`.

    It runs on every request, so it does as little as it can: an ID without a system call and
    one wrapper around `send`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_ids.next()
        scope.setdefault("state", {})["request_id"] = rid
        id_header = (b"x-request-id", rid.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # A new list: the one in the message may belong to a Response the app reuses.
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        # The database cannot hold NUL characters: such a request is answered here, for every
        # route at once. A path holding one names nothing that can exist.
        if "\x00" in scope["path"]:
            response = error_response(scope, 404, NO_ROUTE_CODE, "API not found")
            await response(scope, receive, send_with_id)
            return
        if b"%00" in scope.get("query_string", b""):
            response = error_response(
                scope, 400, VALIDATION_CODE, "the query holds a NUL character (%00)"
            )
            await response(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, receive, send_with_id)
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
