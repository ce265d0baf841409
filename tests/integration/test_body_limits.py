"""Bodies are limited by the bytes that arrive, over real HTTP: a chunked body (no Content-Length)
past the 12 MB limit is answered 413 while the client is still sending it. Artifact uploads,
which have their own limit, are in test_uploads.py."""

import json

from stageline.api.errors import MAX_BODY_BYTES
from tests.rawhttp import send_chunked_until_answered

MB = 1024 * 1024
OFFERED = 300 * MB
"""What the client would send if the server let it: the body that once took a server from 502
to 1,396 MB."""


def test_a_chunked_login_past_the_limit_is_a_413_before_it_is_all_sent(live_server: str) -> None:
    answer = send_chunked_until_answered(live_server, "POST", "/v3/auth/tokens", OFFERED)
    assert answer.status == 413
    error = json.loads(answer.body)
    assert error["error_code"] == "APIGW.0201"
    assert error["error_msg"] == f"request body larger than {MAX_BODY_BYTES} bytes"
    assert error["request_id"] == answer.headers["x-request-id"]
    # Answered once the limit was passed, long before the 300 MB were sent.
    assert MAX_BODY_BYTES < answer.sent < OFFERED // 4


def test_the_server_answers_as_usual_after_refusing(live_server: str) -> None:
    send_chunked_until_answered(live_server, "POST", "/v3/auth/tokens", OFFERED)
    empty = send_chunked_until_answered(live_server, "POST", "/v3/auth/tokens", 0)
    assert empty.status == 400  # a missing JSON body, as ever
