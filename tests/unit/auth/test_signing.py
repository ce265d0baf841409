"""SDK-HMAC-SHA256 signing: parity with the official Huawei Cloud SDK signer, and verification."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from stageline.auth.signing import (
    ALGORITHM,
    MAX_CLOCK_SKEW_SECONDS,
    ParsedAuthorization,
    SignatureError,
    canonical_request,
    compute_signature,
    parse_authorization,
    parse_query,
    sign,
    string_to_sign,
    verify,
)

AK = "HPUAEXAMPLEACCESSKEY"
SK = "sk-EXAMPLE-secret-0123456789abcdefghij"
HOST = "stageline.example.com:8443"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SDK_DATE = "20240501T120000Z"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


CASES = {
    "post_json_array": Case(
        "POST",
        "/v5/0f4e1b2c/api/pipelines/7a1c/run",
        headers={"Content-Type": "application/json"},
        body=b'["a", "b"]',
    ),
    "get_query_space_comma_unordered_repeated": Case(
        "GET",
        "/v5/0f4e1b2c/api/pipelines/list",
        query=[
            ("offset", "0"),
            ("name", "hello world"),
            ("tags", "a,b"),
            ("limit", "10"),
            ("name", "alpha"),
            ("expr", "1+1"),
            ("empty", ""),
        ],
        headers={"Content-Type": "application/json;charset=UTF-8"},
    ),
    "percent_encoded_path": Case("GET", "/v5/0f4e1b2c/api/pipelines/my%20pipe%2Fx/detail"),
    "percent_encoded_non_ascii_path": Case(
        "GET", "/v5/0f4e1b2c/api/pipelines/%E6%B5%81%E6%B0%B4%E7%BA%BF"
    ),
    "raw_non_ascii_path": Case("DELETE", "/v5/0f4e1b2c/api/pipelines/流水线~ü"),
    "empty_body_delete_trailing_slash": Case("DELETE", "/v5/0f4e1b2c/api/pipelines/7a1c/"),
    "unsigned_header_with_underscore_and_padded_value": Case(
        "PUT",
        "/v5/0f4e1b2c/api/pipelines/7a1c",
        headers={"Content-Type": "application/json", "X_Trace_Id": "t1", "X-Tag": "  v  "},
        body=b'{"name": "x"}',
    ),
    "multipart_body_is_unsigned_payload": Case(
        "POST",
        "/v5/0f4e1b2c/api/pipelines/upload",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        body=b"--xyz\r\ncontent\r\n--xyz--\r\n",
    ),
}


def url_for(case: Case, host: str = HOST) -> str:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in case.query)
    return f"https://{host}{case.path}" + (f"?{query}" if query else "")


def sdk_signed(case: Case, *, body_none_when_empty: bool = False) -> SdkRequest:
    """Sign `case` with the official SDK signer at SDK_DATE; the request's headers are mutated."""
    body: bytes | None = case.body
    if body_none_when_empty and not body:
        body = None
    request = SdkRequest(
        method=case.method,
        schema="https",
        host=HOST,
        resource_path=case.path,
        query_params=list(case.query),
        header_params={**case.headers, "X-Sdk-Date": SDK_DATE},
        body=body,
    )
    return Signer(BasicCredentials(AK, SK)).sign(request)


def secrets(ak: str) -> str | None:
    return {AK: SK}.get(ak)


def verify_url(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: datetime = NOW,
    lookup_secret: Callable[[str], str | None] = secrets,
) -> str:
    parts = urlsplit(url)
    return verify(
        method,
        parts.path,
        parse_query(parts.query),
        headers,
        body,
        lookup_secret=lookup_secret,
        now=now,
    )


def signed_by_us(case: Case, *, now: datetime = NOW) -> dict[str, str]:
    return sign(case.method, url_for(case), case.headers, case.body, AK, SK, now=now)


# --- parity with the official SDK ------------------------------------------------------------


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_sign_produces_the_same_headers_as_the_sdk_signer(case: Case) -> None:
    sdk_request = sdk_signed(case)

    ours = signed_by_us(case)

    assert ours["Authorization"] == sdk_request.header_params["Authorization"]
    assert ours == sdk_request.header_params


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_sign_with_preset_date_header_matches_sdk(case: Case) -> None:
    headers = {**case.headers, "X-Sdk-Date": SDK_DATE}

    ours = sign(case.method, url_for(case), headers, case.body, AK, SK, now=NOW - timedelta(days=9))

    assert ours["X-Sdk-Date"] == SDK_DATE
    assert ours["Authorization"] == sdk_signed(case).header_params["Authorization"]


def test_empty_body_signs_like_sdk_none_body() -> None:
    case = CASES["percent_encoded_path"]

    sdk_request = sdk_signed(case, body_none_when_empty=True)

    assert signed_by_us(case)["Authorization"] == sdk_request.header_params["Authorization"]


def test_sign_sends_sdk_authorization_format_and_signs_date_and_host() -> None:
    auth = signed_by_us(CASES["post_json_array"])["Authorization"]

    assert auth.startswith(f"{ALGORITHM} Access={AK}, SignedHeaders=content-type;host;x-sdk-date, ")
    assert parse_authorization(auth).signed_headers == ("content-type", "host", "x-sdk-date")


def test_sign_does_not_mutate_the_given_headers() -> None:
    headers = {"Content-Type": "application/json"}

    result = sign("POST", "https://h/x", headers, b"{}", AK, SK, now=NOW)

    assert headers == {"Content-Type": "application/json"}
    assert set(result) == {"Content-Type", "X-Sdk-Date", "Host", "Authorization"}
    assert result["Host"] == "h"
    assert result["X-Sdk-Date"] == SDK_DATE


def test_sign_keeps_an_explicit_host_header() -> None:
    result = sign("GET", "https://10.0.0.1/x", {"host": "public.example"}, b"", AK, SK, now=NOW)

    assert result["host"] == "public.example"
    assert "Host" not in result


def test_sign_converts_an_aware_now_to_utc_and_takes_naive_now_as_utc() -> None:
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    naive = NOW.replace(tzinfo=None)

    assert sign("GET", "https://h/", {}, b"", AK, SK, now=plus_two)["X-Sdk-Date"] == SDK_DATE
    assert sign("GET", "https://h/", {}, b"", AK, SK, now=naive)["X-Sdk-Date"] == SDK_DATE


def test_sign_rejects_a_malformed_preset_date() -> None:
    with pytest.raises(ValueError, match="X-Sdk-Date"):
        sign("GET", "https://h/", {"X-Sdk-Date": "2024-05-01T12:00:00Z"}, b"", AK, SK)


def test_sign_replaces_a_stale_authorization_header() -> None:
    fresh = sign("GET", "https://h/x", {}, b"", AK, SK, now=NOW)

    again = sign("GET", "https://h/x", {"Authorization": "old"}, b"", AK, SK, now=NOW)

    assert again == fresh


# --- verification ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verify_accepts_what_sign_produced(case: Case) -> None:
    headers = signed_by_us(case)

    assert verify_url(case.method, url_for(case), headers, case.body) == AK


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verify_accepts_what_the_sdk_signer_produced(case: Case) -> None:
    sdk_request = sdk_signed(case)
    body = sdk_request.body or b""
    assert isinstance(body, bytes)

    # request.uri is what the SDK puts on the wire: resource path plus canonical query string.
    url = f"https://{HOST}{sdk_request.uri}"

    assert verify_url(case.method, url, dict(sdk_request.header_params), body) == AK


def test_verify_accepts_lower_case_header_names_as_servers_deliver_them() -> None:
    case = CASES["post_json_array"]
    headers = {k.lower(): v for k, v in signed_by_us(case).items()}

    assert verify_url(case.method, url_for(case), headers, case.body) == AK


def test_verify_accepts_a_date_just_within_the_allowed_skew() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case, now=NOW - timedelta(seconds=MAX_CLOCK_SKEW_SECONDS))

    assert verify_url(case.method, url_for(case), headers, case.body) == AK


def rejection(case: Case, url: str, headers: dict[str, str], body: bytes) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_url(case.method, url, headers, body)
    return caught.value


def test_verify_rejects_a_tampered_body() -> None:
    case = CASES["post_json_array"]

    error = rejection(case, url_for(case), signed_by_us(case), b'["a", "c"]')

    assert error.reason == "signature does not match"
    assert error.clock_skew is False


def test_verify_rejects_a_tampered_body_even_when_sdk_signed() -> None:
    case = CASES["post_json_array"]
    sdk_request = sdk_signed(case)

    error = rejection(
        case, f"https://{HOST}{sdk_request.uri}", dict(sdk_request.header_params), b'["x"]'
    )

    assert error.reason == "signature does not match"


def test_verify_rejects_a_tampered_path() -> None:
    case = CASES["post_json_array"]
    url = url_for(case).replace("/7a1c/", "/7a1d/")

    assert rejection(case, url, signed_by_us(case), case.body).reason == "signature does not match"


@pytest.mark.parametrize(
    "tampered",
    [
        "limit=10&name=alpha&name=hello%20world&offset=0&tags=a%2Cb&expr=1%2B1&empty=&extra=1",
        "limit=100&name=alpha&name=hello%20world&offset=0&tags=a%2Cb&expr=1%2B1&empty=",
        "limit=10&name=alpha&offset=0&tags=a%2Cb&expr=1%2B1&empty=",
        "limit=10&name=alpha&name=hello+world&offset=0&tags=a%2Cb&expr=1%2B1&empty=",
        "limit=10&name=alpha&name=hello%20world&offset=0&tags=a%2Cb&expr=1%201&empty=",
    ],
    ids=["added", "changed", "removed", "plus_is_not_space", "space_is_not_plus"],
)
def test_verify_rejects_a_tampered_query(tampered: str) -> None:
    case = CASES["get_query_space_comma_unordered_repeated"]
    headers = signed_by_us(case)
    url = f"https://{HOST}{case.path}?{tampered}"

    assert rejection(case, url, headers, b"").reason == "signature does not match"


def test_verify_accepts_the_same_query_in_another_order_and_encoding() -> None:
    case = CASES["get_query_space_comma_unordered_repeated"]
    headers = signed_by_us(case)
    reordered = "empty=&expr=1%2b1&limit=10&name=hello%20world&name=alpha&offset=0&tags=a,b"

    assert verify_url(case.method, f"https://{HOST}{case.path}?{reordered}", headers, b"") == AK


@pytest.mark.parametrize(
    ("name", "value"),
    [("Host", "evil.example.com"), ("X-Sdk-Date", "20240501T120001Z"), ("Content-Type", "x/y")],
)
def test_verify_rejects_a_changed_signed_header(name: str, value: str) -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case) | {name: value}

    assert rejection(case, url_for(case), headers, case.body).reason == "signature does not match"


def test_verify_ignores_unsigned_headers_added_in_transit() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case) | {"X-Forwarded-For": "10.1.2.3"}

    assert verify_url(case.method, url_for(case), headers, case.body) == AK


def test_verify_rejects_a_signed_header_that_is_missing() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case)
    del headers["Content-Type"]

    assert "content-type" in rejection(case, url_for(case), headers, case.body).reason


def test_verify_rejects_a_signed_header_sent_twice_in_different_case() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case) | {"host": "evil.example.com"}

    assert "repeated" in rejection(case, url_for(case), headers, case.body).reason


def test_verify_rejects_a_signature_made_with_the_wrong_secret_key() -> None:
    case = CASES["post_json_array"]
    headers = sign(case.method, url_for(case), case.headers, case.body, AK, SK + "x", now=NOW)

    assert rejection(case, url_for(case), headers, case.body).reason == "signature does not match"


def test_verify_rejects_an_unknown_access_key() -> None:
    case = CASES["post_json_array"]
    headers = sign(case.method, url_for(case), case.headers, case.body, "NOSUCHAK", SK, now=NOW)

    error = rejection(case, url_for(case), headers, case.body)

    assert error.reason == "ak not exist"
    assert error.clock_skew is False


@pytest.mark.parametrize("minutes", [16, -16])
def test_verify_rejects_a_date_sixteen_minutes_off_as_clock_skew(minutes: int) -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case, now=NOW + timedelta(minutes=minutes))

    error = rejection(case, url_for(case), headers, case.body)

    assert error.clock_skew is True
    assert "X-Sdk-Date" in error.reason


def test_verify_rejects_a_malformed_date_as_clock_skew() -> None:
    case = CASES["post_json_array"]
    headers = {
        "Content-Type": "application/json",
        "Host": HOST,
        "X-Sdk-Date": "2024-05-01T12:00:00Z",
    }
    signed_headers = ["content-type", "host", "x-sdk-date"]
    canonical = canonical_request(case.method, case.path, [], headers, signed_headers, case.body)
    signature = compute_signature(SK, string_to_sign(canonical, headers["X-Sdk-Date"]))
    headers["Authorization"] = (
        f"{ALGORITHM} Access={AK}, SignedHeaders={';'.join(signed_headers)}, Signature={signature}"
    )

    error = rejection(case, url_for(case), headers, case.body)

    assert error.clock_skew is True


def test_verify_reports_tampering_not_clock_skew_when_both_are_wrong() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case, now=NOW - timedelta(hours=1))

    error = rejection(case, url_for(case), headers, b"[]")

    assert error.reason == "signature does not match"
    assert error.clock_skew is False


def test_verify_rejects_a_request_without_authorization() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case)
    del headers["Authorization"]

    assert rejection(case, url_for(case), headers, case.body).reason == (
        "missing Authorization header"
    )


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "garbage",
        f"{ALGORITHM}",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date, Signature=",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date, Signature=xyz",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date, Signature={'A' * 64}",
        f"{ALGORITHM} Access=, SignedHeaders=host;x-sdk-date, Signature={'a' * 64}",
        f"{ALGORITHM} Access={AK}, SignedHeaders=, Signature={'a' * 64}",
        f"{ALGORITHM} Access={AK}, SignedHeaders=Host;X-Sdk-Date, Signature={'a' * 64}",
        f"{ALGORITHM} Access={AK} SignedHeaders=host;x-sdk-date Signature={'a' * 64}",
        f"{ALGORITHM} Access={AK}, Access={AK}, SignedHeaders=host, Signature={'a' * 64}",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date, Signature={'a' * 64}, X=1",
        f"{ALGORITHM} Access={AK}, SignedHeaders=host;x-sdk-date, Signature={'é' * 64}",
    ],
)
def test_parse_authorization_rejects_malformed_values(authorization: str) -> None:
    with pytest.raises(SignatureError):
        parse_authorization(authorization)


def test_verify_rejects_a_malformed_authorization_header() -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case)
    headers["Authorization"] = headers["Authorization"].replace(", Signature=", " Signature=")

    error = rejection(case, url_for(case), headers, case.body)

    assert "malformed" in error.reason
    assert error.clock_skew is False


@pytest.mark.parametrize("algorithm", ["SDK-HMAC-SM3", "V11-HMAC-SHA256", "sdk-hmac-sha256"])
def test_verify_rejects_another_algorithm(algorithm: str) -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case)
    headers["Authorization"] = headers["Authorization"].replace(ALGORITHM, algorithm, 1)

    assert "algorithm" in rejection(case, url_for(case), headers, case.body).reason


@pytest.mark.parametrize("left_out", ["host", "x-sdk-date"])
def test_verify_requires_host_and_date_to_be_signed(left_out: str) -> None:
    case = CASES["post_json_array"]
    headers = signed_by_us(case)
    signed_headers = [h for h in ("content-type", "host", "x-sdk-date") if h != left_out]
    canonical = canonical_request(case.method, case.path, [], headers, signed_headers, case.body)
    signature = compute_signature(SK, string_to_sign(canonical, SDK_DATE))
    headers["Authorization"] = (
        f"{ALGORITHM} Access={AK}, SignedHeaders={';'.join(signed_headers)}, Signature={signature}"
    )

    assert left_out in rejection(case, url_for(case), headers, case.body).reason


def test_verify_rejects_a_declared_payload_hash_that_does_not_match_the_body() -> None:
    case = Case(
        "POST",
        "/v5/p/api/x",
        headers={"Content-Type": "application/json", "X-Sdk-Content-Sha256": "0" * 64},
        body=b"{}",
    )
    headers = signed_by_us(case)

    assert "X-Sdk-Content-Sha256" in rejection(case, url_for(case), headers, case.body).reason


# --- canonical pieces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v5", "/v5/"),
        ("/v5/", "/v5/"),
        ("/v5/a%2F", "/v5/a/"),
        ("/v5/my pipe", "/v5/my%20pipe/"),
        ("/v5/%e6%b5%81", "/v5/%E6%B5%81/"),
        ("/v5/a+b~c", "/v5/a%2Bb~c/"),
    ],
)
def test_canonical_uri_ends_with_exactly_one_slash(raw_path: str, expected: str) -> None:
    uri = canonical_request("GET", raw_path, [], {}, [], b"").split("\n")[1]

    assert uri == expected
    assert uri.endswith("/")
    assert not uri.endswith("//")


def test_canonical_request_layout() -> None:
    canonical = canonical_request(
        "get",
        "/v5/x",
        [("b", "2"), ("a", "z y"), ("a", "1")],
        {"HOST": " h ", "X-Sdk-Date": SDK_DATE},
        ["host", "x-sdk-date"],
        b"",
    )

    assert canonical == "\n".join(
        [
            "GET",
            "/v5/x/",
            "a=1&a=z%20y&b=2",
            f"host:h\nx-sdk-date:{SDK_DATE}\n",
            "host;x-sdk-date",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ]
    )


def test_string_to_sign_is_algorithm_date_and_hex_sha256_of_canonical_request() -> None:
    assert string_to_sign("abc", SDK_DATE) == (
        f"SDK-HMAC-SHA256\n{SDK_DATE}\n"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_compute_signature_is_hex_hmac_sha256_keyed_with_the_secret_key() -> None:
    # RFC 4231, test case 2.
    assert compute_signature("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_parse_query_keeps_plus_and_blank_values() -> None:
    assert parse_query("a=1+1&b=&c&d=x%20y%2B&&e=f=g") == [
        ("a", "1+1"),
        ("b", ""),
        ("c", ""),
        ("d", "x y+"),
        ("e", "f=g"),
    ]
    assert parse_query("") == []


def test_parse_authorization_reads_the_sdk_format() -> None:
    sig = "0a" * 32

    parsed = parse_authorization(
        f"{ALGORITHM} Access={AK}, SignedHeaders=content-type;host;x-sdk-date, Signature={sig}"
    )

    assert parsed == ParsedAuthorization(AK, ("content-type", "host", "x-sdk-date"), sig)
