"""A delivery's envelope: which host sent it, whether its secret checks out, its delivery ID,
and its body as a JSON object. The secret is checked over the raw bytes before anything reads
the body.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from stageline.domain.errors import Unauthenticated
from stageline.domain.webhooks.events import Host, InvalidPayload

Headers = Mapping[str, str]
"""Request headers; names are compared case-insensitively."""

TOKEN_HEADERS = ("x-repo-token", "x-gitlab-token", "x-auth-token")
"""Where CodeArts Repo sends its secret in clear (the header is chosen per hook)."""
CODEARTS_TOKEN_HEADERS = ("x-repo-token", "x-auth-token")
"""The token headers only CodeArts Repo sends (GitLab sends X-Gitlab-Token)."""
GITEA_EVENT_HEADERS = ("x-forgejo-event", "x-gitea-event", "x-gogs-event")
GITEA_SIGNATURE_HEADERS = ("x-forgejo-signature", "x-gitea-signature", "x-gogs-signature")
GITEA_DELIVERY_HEADERS = ("x-forgejo-delivery", "x-gitea-delivery", "x-gogs-delivery")
DELIVERY_ID_MAX_CHARS = 128


@dataclass(frozen=True)
class Envelope:
    """The headers of a delivery, looked up by lower-case name."""

    headers: Mapping[str, str]

    @classmethod
    def of(cls, headers: Headers) -> "Envelope":
        return cls({name.lower(): value for name, value in headers.items()})

    def first(self, *names: str) -> str | None:
        """The value of the first of `names` that is present and not empty."""
        for name in names:
            value = self.headers.get(name)
            if value:
                return value
        return None


def detect_host(envelope: Envelope, body: bytes) -> Host | None:
    """Gitea/Forgejo first (they also send GitHub's headers); then CodeArts Repo when its own
    token header (X-Repo-Token, X-Auth-Token) is there, whatever event header it sends along
    (being GitLab-derived, it may send X-Gitlab-Event); then GitLab, then GitHub, then
    CodeArts Repo again (X-Gitlab-Token without an event header, or a GitLab-shaped body);
    None when nothing tells."""
    if envelope.first(*GITEA_EVENT_HEADERS):
        return Host.GITEA
    if envelope.first(*CODEARTS_TOKEN_HEADERS):
        return Host.CODEARTS
    if envelope.first("x-gitlab-event"):
        return Host.GITLAB
    if envelope.first("x-github-event"):
        return Host.GITHUB
    if envelope.first(*TOKEN_HEADERS) or b'"object_kind"' in body:
        return Host.CODEARTS
    return None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def authenticate(host: Host, envelope: Envelope, body: bytes, *, secret: str) -> None:
    """Raise Unauthenticated unless the delivery carries `secret` the way its host sends it:
    GitLab and CodeArts the secret itself in a header; GitHub `X-Hub-Signature-256:
    sha256=<hex>` and Gitea/Forgejo a bare hex HMAC-SHA256 of the raw body. Every comparison
    takes constant time. A body field named `secret` (old Gitea) is never looked at."""
    if host is Host.GITLAB:
        token = envelope.first("x-gitlab-token")
        if token is None:
            raise Unauthenticated("missing X-Gitlab-Token: set the hook's secret token")
        if not _same(token, secret):
            raise Unauthenticated("X-Gitlab-Token does not match the trigger's security_token")
    elif host is Host.CODEARTS:
        token = envelope.first(*TOKEN_HEADERS)
        if token is None:
            raise Unauthenticated("missing X-Repo-Token: set the hook's token")
        if not _same(token, secret):
            raise Unauthenticated("the hook's token does not match the trigger's security_token")
    elif host is Host.GITHUB:
        signature = envelope.first("x-hub-signature-256")
        if signature is None:
            raise Unauthenticated(
                "missing X-Hub-Signature-256: set the hook's secret (SHA-1 signatures are not"
                " accepted)"
            )
        if not _same(signature.strip().lower(), "sha256=" + _hmac_sha256(secret, body)):
            raise Unauthenticated("X-Hub-Signature-256 does not match the body and the secret")
    else:
        signature = envelope.first(*GITEA_SIGNATURE_HEADERS)
        if signature is None:
            raise Unauthenticated("missing X-Gitea-Signature: set the hook's secret")
        if not _same(signature.strip().lower(), _hmac_sha256(secret, body)):
            raise Unauthenticated("X-Gitea-Signature does not match the body and the secret")


def delivery_id(host: Host, envelope: Envelope) -> str | None:
    """What the host sends again, unchanged, when it redelivers: GitLab's Idempotency-Key
    (GitLab 17.4 and later) else X-Gitlab-Event-UUID; X-GitHub-Delivery; the Forgejo/Gitea
    delivery UUID. None when the host sent none (nothing to deduplicate on). A longer ID than
    a column holds is replaced by its SHA-256."""
    if host is Host.GITHUB:
        found = envelope.first("x-github-delivery")
    elif host is Host.GITEA:
        found = envelope.first(*GITEA_DELIVERY_HEADERS)
    else:
        found = envelope.first("idempotency-key", "x-gitlab-event-uuid")
    if found is None:
        return None
    if len(found) > DELIVERY_ID_MAX_CHARS:
        return "sha256:" + hashlib.sha256(found.encode()).hexdigest()
    return found


def read_body(envelope: Envelope, body: bytes) -> dict[str, Any]:
    """The body as a JSON object: sent as JSON, or (GitHub's and Gitea's form content type)
    as a form whose `payload` field holds the JSON. InvalidPayload otherwise."""
    content_type = (envelope.first("content-type") or "").lower()
    raw: str | bytes = body
    if "x-www-form-urlencoded" in content_type or body.startswith(b"payload="):
        try:
            fields = parse_qs(body.decode(), strict_parsing=False, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise InvalidPayload("the form body cannot be read") from None
        payloads = fields.get("payload")
        if not payloads:
            raise InvalidPayload("the form body has no `payload` field")
        raw = payloads[0]
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidPayload("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidPayload("the body is not a JSON object")
    return document
