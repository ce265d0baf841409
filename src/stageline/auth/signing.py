"""AK/SK request signing with SDK-HMAC-SHA256, computed exactly as the official Huawei Cloud
Python SDK (`huaweicloudsdkcore.signer.signer.Signer`) does: `sign` for our own clients and
agents, `verify` for the server checking requests from them or from the official SDKs."""

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60

DATE_FORMAT = "%Y%m%dT%H%M%SZ"
HEADER_DATE = "X-Sdk-Date"
HEADER_HOST = "Host"
HEADER_AUTHORIZATION = "Authorization"
HEADER_CONTENT_SHA256 = "X-Sdk-Content-Sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
UNSIGNED_BODY = b"<unsigned payload>"
"""Stands for a non-empty body whose content the signature does not cover (UNSIGNED-PAYLOAD):
signer and verifier pass it instead of streaming the whole body through memory."""

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DATE_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME_PATTERN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
# Headers whose presence the official SDK always signs; we refuse requests that leave them out.
_REQUIRED_SIGNED_HEADERS = ("host", "x-sdk-date")


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


class SignatureError(Exception):
    """Why a signature was rejected; `reason` is a short message safe to show a client.

    `clock_skew` is True when the signature itself is valid and the only problem is an
    X-Sdk-Date that is malformed or more than MAX_CLOCK_SKEW_SECONDS away from the server clock.
    """

    def __init__(self, reason: str, *, clock_skew: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.clock_skew = clock_skew


def _encode(value: str) -> str:
    # Same call as the SDK: keeps only RFC 3986 unreserved characters, upper-case hex, UTF-8.
    return quote(value, safe="~")


def _canonical_uri(raw_path: str) -> str:
    uri = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _canonical_query_string(query: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(query))


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _hashed_payload(lowered_headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return _EMPTY_SHA256
    declared = lowered_headers.get(HEADER_CONTENT_SHA256.lower(), "").strip()
    if declared:
        return declared
    return hashlib.sha256(body).hexdigest()


def _authorization_value(access_key: str, signed_headers: Sequence[str], signature: str) -> str:
    return (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed_headers)}, "
        f"Signature={signature}"
    )


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into (name, value) pairs with plain percent-decoding.

    Unlike `urllib.parse.parse_qsl`, a '+' stays a '+': the SDK encodes spaces as %20.
    """
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse `SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<a;b>, Signature=<hex>`."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported signing algorithm, expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, field_value = part.strip().partition("=")
        if not sep or key not in ("Access", "SignedHeaders", "Signature") or key in fields:
            raise SignatureError("malformed Authorization header")
        fields[key] = field_value.strip()
    if len(fields) != 3:
        raise SignatureError("malformed Authorization header")
    access_key = fields["Access"]
    if not access_key or any(ch.isspace() for ch in access_key):
        raise SignatureError("malformed Authorization header: bad Access")
    signed_headers = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME_PATTERN.fullmatch(name) for name in signed_headers):
        raise SignatureError("malformed Authorization header: bad SignedHeaders")
    signature = fields["Signature"]
    if not _SIGNATURE_PATTERN.fullmatch(signature):
        raise SignatureError("malformed Authorization header: bad Signature")
    return ParsedAuthorization(access_key, signed_headers, signature)


def canonical_request(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """Build the canonical request; header names are matched case-insensitively.

    Raises SignatureError if a header named in `signed_headers` is absent from `headers`.
    """
    lowered = _lower_keys(headers)
    canonical_headers: list[str] = []
    for name in signed_headers:
        header_value = lowered.get(name.lower())
        if header_value is None:
            raise SignatureError(f"signed header {name} is missing from the request")
        canonical_headers.append(f"{name}:{header_value.strip()}\n")
    return "\n".join(
        [
            method.upper(),
            _canonical_uri(raw_path),
            _canonical_query_string(query),
            "".join(canonical_headers),
            ";".join(signed_headers),
            _hashed_payload(lowered, body),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def compute_signature(secret_key: str, string_to_sign: str) -> str:
    key = secret_key.encode("utf-8")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken to be UTC already, as the SDK's datetime.utcnow() is.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _find(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return a new dict: `headers` plus X-Sdk-Date, Host and Authorization, as the SDK adds them.

    As the SDK does, every header present is signed (except names containing '_'), values are
    trimmed, and a Content-Type other than JSON/BSON adds X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD.
    The query is read from `url` with `parse_query`, i.e. as `verify` will read it.
    """
    parts = urlsplit(url)
    signed: dict[str, str] = {
        name: value.strip()
        for name, value in headers.items()
        if name.lower() != HEADER_AUTHORIZATION.lower()
    }

    content_type = _find(signed, "Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        for name in [key for key in signed if key.lower() == HEADER_CONTENT_SHA256.lower()]:
            del signed[name]
        signed[HEADER_CONTENT_SHA256] = UNSIGNED_PAYLOAD

    sdk_date = _find(signed, HEADER_DATE)
    if sdk_date is None:
        sdk_date = _utc(datetime.now(UTC) if now is None else now).strftime(DATE_FORMAT)
        signed[HEADER_DATE] = sdk_date
    elif not _DATE_PATTERN.fullmatch(sdk_date):
        raise ValueError(f"{HEADER_DATE} must match {DATE_FORMAT}, got {sdk_date!r}")

    if _find(signed, HEADER_HOST) is None:
        host = parts.netloc.rpartition("@")[2]
        if not host:
            raise ValueError("url has no host and no Host header was given")
        signed[HEADER_HOST] = host

    signed_headers = sorted(name.lower() for name in signed if "_" not in name)
    canonical = canonical_request(
        method, parts.path, parse_query(parts.query), signed, signed_headers, body
    )
    signature = compute_signature(secret_key, string_to_sign(canonical, sdk_date))
    signed[HEADER_AUTHORIZATION] = _authorization_value(access_key, signed_headers, signature)
    return signed


def verify(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    *,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
) -> str:
    """Check a signed request and return its access key; raise SignatureError otherwise.

    `raw_path` is the path as received (still percent-encoded), `query` comes from
    `parse_query(raw_query)`, `headers` holds the received headers (names in any case; values
    as text, decoded as UTF-8). The date is checked after the signature, so `clock_skew` is set
    only on requests that are otherwise correctly signed.
    """
    lowered: dict[str, str] = {}
    duplicated: set[str] = set()
    for name, value in headers.items():
        key = name.lower()
        if key in lowered:
            duplicated.add(key)
        lowered[key] = value

    authorization = lowered.get(HEADER_AUTHORIZATION.lower())
    if authorization is None:
        raise SignatureError("missing Authorization header")
    parsed = parse_authorization(authorization)
    for required in _REQUIRED_SIGNED_HEADERS:
        if required not in parsed.signed_headers:
            raise SignatureError(f"{required} must be among the signed headers")
    repeated = duplicated.intersection(parsed.signed_headers)
    if repeated:
        raise SignatureError(f"signed header {min(repeated)} is repeated")
    sdk_date = lowered.get(HEADER_DATE.lower())
    if sdk_date is None:
        raise SignatureError(f"missing {HEADER_DATE} header")

    declared = lowered.get(HEADER_CONTENT_SHA256.lower(), "").strip()
    if body and declared and declared not in (UNSIGNED_PAYLOAD, hashlib.sha256(body).hexdigest()):
        raise SignatureError(f"{HEADER_CONTENT_SHA256} does not match the body")

    secret_key = lookup_secret(parsed.access_key)
    if secret_key is None:
        raise SignatureError("ak not exist")

    canonical = canonical_request(method, raw_path, query, lowered, parsed.signed_headers, body)
    expected = compute_signature(secret_key, string_to_sign(canonical, sdk_date.strip()))
    if not hmac.compare_digest(expected, parsed.signature):
        raise SignatureError("signature does not match")

    sdk_date = sdk_date.strip()
    if not _DATE_PATTERN.fullmatch(sdk_date):
        raise SignatureError(f"{HEADER_DATE} must match {DATE_FORMAT}", clock_skew=True)
    try:
        signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(f"{HEADER_DATE} is not a valid date", clock_skew=True) from None
    if abs((_utc(now) - signed_at).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError(
            f"{HEADER_DATE} is more than {MAX_CLOCK_SKEW_SECONDS // 60} minutes from server time",
            clock_skew=True,
        )
    return parsed.access_key
