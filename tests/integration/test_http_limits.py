"""What `stageline serve` bounds before a request reaches the app: how long a client may take
to send its headers, how large they may be, and how long an idle connection stays open.

The server runs as `serve` runs it (`cli.http_server.uvicorn_options`), with short timeouts so
that the tests wait little; each wait is bounded by the socket's own timeout, not measured.
"""

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from stageline.api.app import create_app
from stageline.cli.http_server import uvicorn_options
from stageline.settings import Settings
from stageline.store.database import Database
from tests.conftest import serving

BOUND_SECONDS = 30.0
"""Longest a test waits for the server to answer or close: a bound, not a measurement."""


@pytest.fixture(scope="module")
def guarded(quiet_settings: Settings, quiet_db: Database) -> Iterator[tuple[str, int]]:
    settings = quiet_settings.model_copy(
        update={
            "header_timeout_seconds": 0.5,
            "keep_alive_seconds": 0.5,
            "max_header_bytes": 8192,
            "max_header_count": 20,
        }
    )
    with serving(create_app(settings, db=quiet_db), **uvicorn_options(settings)) as url:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        yield parts.hostname, parts.port


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=BOUND_SECONDS)


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within the bound)."""
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def test_a_client_that_sends_nothing_is_closed(guarded: tuple[str, int]) -> None:
    with connect(guarded) as conn:
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_slow_client_is_closed_before_its_headers_end(guarded: tuple[str, int]) -> None:
    with connect(guarded) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\nX-Slow: a")
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"x-request-id: " in answer


def slow_client(address: tuple[str, int]) -> socket.socket:
    """A connection that has sent part of its headers. It sends them at once: bytes that arrive
    after the server has given up on a connection are answered with a reset, not a 408."""
    conn = connect(address)
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\n")
    return conn


def test_200_slow_clients_are_all_closed(guarded: tuple[str, int]) -> None:
    conns = [slow_client(guarded) for _ in range(200)]
    try:
        assert all(read_until_closed(conn).startswith(b"HTTP/1.1 408 ") for conn in conns)
    finally:
        for conn in conns:
            conn.close()


def test_an_idle_kept_alive_connection_is_closed(guarded: tuple[str, int]) -> None:
    with connect(guarded) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\n\r\n")
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_request_within_the_limits_is_served(guarded: tuple[str, int]) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(15))
    with connect(guarded) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\n" + headers + b"\r\n")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_too_many_headers_are_a_431(guarded: tuple[str, int]) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(21))
    with connect(guarded) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\n" + headers + b"\r\n")
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"error_code":"APIGW.0201"' in answer


def test_a_header_too_large_is_a_431(guarded: tuple[str, int]) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: stageline\r\nX-Big: " + b"v" * 10_000 + b"\r\n\r\n"
    with connect(guarded) as conn:
        conn.sendall(request)
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_header_that_never_ends_is_a_431_once_too_large(guarded: tuple[str, int]) -> None:
    """The parser buffers a header value until it ends: the bytes count as they come. The
    client sends nothing after the piece that crosses the limit, so it reads the answer."""
    with connect(guarded) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: stageline\r\nX-Big: ")
        for _ in range(19):
            conn.sendall(b"v" * 400)
        conn.sendall(b"v" * 1000)
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_request_line_too_long_is_a_431(guarded: tuple[str, int]) -> None:
    with connect(guarded) as conn:
        conn.sendall(b"GET /health?" + b"q" * 10_000 + b" HTTP/1.1\r\nHost: stageline\r\n\r\n")
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431 ")
