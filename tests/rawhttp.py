"""A raw-socket HTTP client that sends a chunked body only until the server answers.

HTTP clients send the whole body before they read an answer, so they cannot show that a server
answered early; this one sends chunks until an answer is there and says how much it had sent
by then (the server may have read less: socket buffers hold some on the way).
"""

import select
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = b"x" * (64 * 1024)


@dataclass(frozen=True)
class EarlyAnswer:
    sent: int
    """Body bytes sent when the answer arrived (all of `offered` if it came only after)."""
    status: int
    headers: dict[str, str]
    body: bytes


def send_chunked_until_answered(
    base_url: str,
    method: str,
    target: str,
    offered: int,
    headers: dict[str, str] | None = None,
) -> EarlyAnswer:
    """Send `method target` with up to `offered` bytes of chunked body (fewer if the answer
    comes first) and read the answer."""
    parts = urlsplit(base_url)
    fields = {"Host": parts.netloc, "Content-Type": "application/json", **(headers or {})}
    fields["Transfer-Encoding"] = "chunked"
    head = f"{method} {target} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        framed = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        sent = 0
        answered = False
        deadline = time.monotonic() + 120  # a bound for a stuck server, not a timing check
        while sent < offered and not answered and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            answered = bool(readable)
            if writable and not answered:
                sock.sendall(framed)
                sent += len(CHUNK)
        if not answered:
            sock.sendall(b"0\r\n\r\n")  # the last chunk: the body is complete
        return _read_answer(sock, sent)


def _read_answer(sock: socket.socket, sent: int) -> EarlyAnswer:
    raw = b""
    while True:
        head, separator, body = raw.partition(b"\r\n\r\n")
        if separator:
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(body) >= int(headers.get("content-length", "0")):
                return EarlyAnswer(sent, int(status_line.split()[1]), headers, body)
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"the connection closed before a whole answer: {raw[:200]!r}")
        raw += data
