"""Request bodies are limited by the bytes that arrive, not only by what Content-Length claims.

A body larger than its route's limit is answered 413 `APIGW.0201` as soon as that is known: at
once when Content-Length declares more, else when the bytes streamed so far (chunked transfer
encoding) pass the limit. Then the application sees the client as gone, so it stops reading and
keeps nothing of the body; what it would have answered is dropped, and the 413 goes out as soon
as it has let go.

Every route has the API gateway's limit (`MAX_BODY_BYTES`) except those given their own, such
as artifact uploads, which are streamed to storage and may be as large as
`STAGELINE_ARTIFACT_MAX_BYTES`.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stageline.api.errors import TOO_LARGE_CODE, error_response


@dataclass(frozen=True)
class RouteLimit:
    """The body limit of the requests whose method is `method` and whose path `path` matches."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class BodyLimit:
    """Pure ASGI middleware; it must sit inside `RequestIdMiddleware`, whose request ID and
    X-Request-Id header its 413 carries."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, route_limits: Sequence[RouteLimit] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.route_limits = tuple(route_limits)

    def limit_of(self, scope: Scope) -> int:
        for route in self.route_limits:
            if scope["method"] == route.method and route.path.fullmatch(scope["path"]):
                return route.max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, limit)
            return
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The application stops reading as for a client that went away.
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # its answer to a cut-off body: the 413 below stands instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # It failed because its body was cut off (a disconnected stream): not a bug.
        if refused and not started:
            # Only now, so that whatever the application did with the part it read (a
            # temporary file, say) is undone by the time the client learns of the refusal.
            await _refuse(scope, receive, send, limit)


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = error_response(scope, 413, TOO_LARGE_CODE, f"request body larger than {limit} bytes")
    await response(scope, receive, send)
