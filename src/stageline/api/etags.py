"""Strong entity tags for what feeds answer, and `If-None-Match` → 304.

A poller that sends back the ETag it was given is answered 304 with no body while nothing
changed: the same freshness, a fraction of the bytes. The tag is a hash of the body itself, so
every server process gives the same body the same tag with nothing to share or remember.
Batch answers are hashed from their elements' digests, kept beside the cached elements, so a
tag costs a hash of 20 bytes per element rather than of the whole body.
"""

import hashlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response


def etag_of(body: bytes) -> str:
    """A strong tag: 128 bits of SHA-1 of the body (SHA-1 because processors hash it fastest;
    a tag guards against no adversary, it tells versions apart)."""
    return f'"{hashlib.sha1(body, usedforsecurity=False).hexdigest()[:32]}"'


def element_digest(element: bytes) -> bytes:
    """What an element of a JSON array contributes to the array's tag (`etag_of_elements`),
    computed once when the element is rendered."""
    return hashlib.sha1(element, usedforsecurity=False).digest()


def etag_of_elements(digests: list[bytes]) -> str:
    """The strong tag of a JSON array from its elements' digests, in order: as a hash of the
    body it changes whenever a byte of the body does, but it hashes 20 bytes per element
    instead of the whole answer (a hundred rendered runs are about 100 kB)."""
    return etag_of(b"".join(digests))


def none_match(header: str, etag: str) -> bool:
    """Whether an `If-None-Match` value lists `etag` (or is `*`). Comparison is weak, as RFC
    9110 §13.1.2 asks: `W/"x"` matches `"x"`."""
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def conditional(
    request: Request,
    body: bytes,
    *,
    media_type: str,
    headers: Mapping[str, str] | None = None,
    etag: str | None = None,
) -> Response:
    """200 with the body and its ETag (`etag_of(body)` unless given), or 304 with the same
    headers and no body when the request's `If-None-Match` lists that tag."""
    etag = etag or etag_of(body)
    sent = {**(headers or {}), "ETag": etag}
    wanted = request.headers.get("if-none-match")
    if wanted is not None and none_match(wanted, etag):
        return Response(status_code=304, headers=sent)
    return Response(body, media_type=media_type, headers=sent)
