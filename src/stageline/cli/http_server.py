"""How `stageline serve` runs uvicorn: the HTTP protocol with limits on what a client may send
before its request reaches the app.

Uvicorn's httptools protocol bounds neither the request line and headers (llhttp leaves that to
its host) nor the time a client may take to send them, so a few hundred slow clients could hold
the server's connections for as long as they liked. `GuardedHttpToolsProtocol` closes a
connection whose headers do not arrive within `header_timeout_seconds` (408) and answers 431 to
headers larger than `max_header_bytes` or with more than `max_header_count` fields. Idle
kept-alive connections close after `keep_alive_seconds` (uvicorn's own timer).
"""

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stageline.settings import Settings

TOO_LARGE_CODE = "APIGW.0201"


@dataclass(frozen=True)
class HeaderLimits:
    timeout_seconds: float = 10.0
    max_bytes: int = 32 * 1024
    max_count: int = 100

    @classmethod
    def of(cls, settings: Settings) -> "HeaderLimits":
        return cls(
            timeout_seconds=settings.header_timeout_seconds,
            max_bytes=settings.max_header_bytes,
            max_count=settings.max_header_count,
        )


class _HeadersTooLarge(httptools.HttpParserError):
    """Raised from a parser callback; uvicorn answers parser errors itself (see below)."""


def _answer(status: bytes, message: str) -> bytes:
    """A complete HTTP/1.1 answer with the error body of every other failure."""
    body = orjson.dumps({"error_code": TOO_LARGE_CODE, "error_msg": message})
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-request-id: " + secrets.token_hex(16).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, with a deadline and a size limit for a request's headers.

    `limits` is set per server by `protocol_for`; worker processes (`serve --workers N`) read it
    from their environment, as they do their other settings.
    """

    limits: ClassVar[HeaderLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = type(self).limits
        if limits is None:
            limits = type(self).limits = HeaderLimits.of(Settings())
        self._limits = limits
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._raw_bytes = 0
        """Bytes received while the headers were incomplete."""
        self._header_bytes = 0
        """Bytes of the request line's target and the header names and values parsed."""
        self._header_fields = 0
        self._refusal: str | None = None

    # -- the deadline -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self._limits.timeout_seconds, self._headers_too_slow
            )

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            seconds = self._limits.timeout_seconds
            self.transport.write(
                _answer(b"408 Request Timeout", f"request headers not received within {seconds}s")
            )
            self.transport.close()

    # -- the size -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_headers and not self.transport.is_closing():
            # Headers still incomplete: the parser buffers a header value until it ends, so
            # what arrives is counted as it comes, not only field by field.
            self._raw_bytes += len(data)
            if self._raw_bytes > self._limits.max_bytes:
                self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._raw_bytes = 0
        self._header_bytes = 0
        self._header_fields = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_fields += 1
        self._header_bytes += len(name) + len(value)
        self._check_headers()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm_header_timer()
        self._check_headers()
        super().on_headers_complete()

    def _check_headers(self) -> None:
        if (
            self._header_fields > self._limits.max_count
            or self._header_bytes > self._limits.max_bytes
        ):
            self._refusal = self._too_large_message()
            raise _HeadersTooLarge(self._refusal)

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._refuse_headers()

    def _too_large_message(self) -> str:
        return (
            f"request headers larger than {self._limits.max_bytes} bytes"
            f" or with more than {self._limits.max_count} fields"
        )

    def _refuse_headers(self) -> None:
        message = self._refusal or self._too_large_message()
        self.transport.write(_answer(b"431 Request Header Fields Too Large", message))
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class of one server, with that server's limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"limits": HeaderLimits.of(settings)},
    )


def uvicorn_options(settings: Settings, *, workers: int = 1) -> dict[str, Any]:
    """The keyword arguments `serve` gives uvicorn for these settings. Several workers are
    separate processes: they get the protocol by name, which reads the settings there."""
    return {
        "http": GuardedHttpToolsProtocol if workers > 1 else protocol_for(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
