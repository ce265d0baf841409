"""Strong entity tags for what feeds answer, and `If-None-Match` → 304.

A poller that sends back the ETag it was given is answered 304 with no body while nothing
changed: the same freshness, a fraction of the bytes. The tag is a hash of the body itself, so
every server process gives the same body the same tag with nothing to share or remember.
"""

import hashlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response


def etag_of(body: bytes) -> str:
    """A strong tag: 128 bits of BLAKE2b of the body (a microsecond for a batch answer)."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def none_match(header: str, etag: str) -> bool:
    """Whether an `If-None-Match` value lists `etag` (or is `*`). Comparison is weak, as RFC
    9110 §13.1.2 asks: `W/"x"` matches `"x"`."""
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def conditional(
    request: Request, body: bytes, *, media_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    """200 with the body and its ETag, or 304 with the same headers and no body when the
    request's `If-None-Match` lists that tag."""
    etag = etag_of(body)
    sent = {**(headers or {}), "ETag": etag}
    wanted = request.headers.get("if-none-match")
    if wanted is not None and none_match(wanted, etag):
        return Response(status_code=304, headers=sent)
    return Response(body, media_type=media_type, headers=sent)
