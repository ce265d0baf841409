"""The client's HTTP side against a fake server (httpx.MockTransport): credentials sent, AK/SK
signatures the server's own verifier accepts, and failures sorted for the exit codes."""

from datetime import UTC, datetime

import httpx
import pytest

from stageline.auth import signing
from stageline.cli.client.api_client import ApiClient, Credentials
from stageline.cli.client.errors import ApiError, NotLoggedIn, Unreachable

PROJECT = "p" * 32
PIPELINE = "a" * 32


def client(handler: httpx.MockTransport, credentials: Credentials) -> ApiClient:
    return ApiClient("http://ci.test", credentials, project_id=PROJECT, transport=handler)


class TestCredentials:
    def test_a_token_goes_in_x_auth_token(self) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"success": True})

        client(httpx.MockTransport(answer), Credentials(token="tok")).stop_run(PIPELINE, "r" * 32)
        assert seen[0].headers["X-Auth-Token"] == "tok"
        assert "Authorization" not in seen[0].headers

    def test_an_ak_sk_signature_verifies_and_differs_per_request(self) -> None:
        signatures: list[str] = []

        def answer(request: httpx.Request) -> httpx.Response:
            access_key = signing.verify(
                request.method,
                request.url.raw_path.split(b"?")[0].decode(),
                signing.parse_query(request.url.query.decode()),
                dict(request.headers),
                request.content,
                lookup_secret=lambda ak: "the-sk" if ak == "the-ak" else None,
                now=datetime.now(UTC),
            )
            assert access_key == "the-ak"
            signatures.append(request.headers["Authorization"])
            return httpx.Response(200, json={"success": True})

        api = client(httpx.MockTransport(answer), Credentials(ak="the-ak", sk="the-sk"))
        for _ in range(2):  # the same command twice in one second: still two requests
            api.decide_review(
                PIPELINE,
                "r" * 32,
                job_run_id="j" * 32,
                step_run_id="s" * 32,
                approve=False,
                comment="not like this",
            )
        assert len(set(signatures)) == 2


class TestFailures:
    def test_an_error_body_keeps_its_code_and_message(self) -> None:
        body = {"error_code": "DEVPIPE.00011401", "error_msg": "pipeline not found"}
        transport = httpx.MockTransport(lambda request: httpx.Response(404, json=body))
        with pytest.raises(ApiError) as raised:
            client(transport, Credentials(token="t")).pipeline(PIPELINE)
        assert str(raised.value) == "DEVPIPE.00011401: pipeline not found"
        assert raised.value.status_code == 404

    def test_a_refused_token_means_logging_in_again(self) -> None:
        body = {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication"}
        transport = httpx.MockTransport(lambda request: httpx.Response(401, json=body))
        with pytest.raises(NotLoggedIn, match=r"APIGW\.0301.*stageline login"):
            client(transport, Credentials(token="t")).list_pipelines()

    def test_no_answer_is_unreachable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        with pytest.raises(Unreachable, match=r"cannot reach the server at http://ci\.test"):
            client(httpx.MockTransport(refuse), Credentials(token="t")).list_pipelines()

    def test_without_credentials_nothing_is_sent(self) -> None:
        transport = httpx.MockTransport(lambda request: pytest.fail("sent"))
        with pytest.raises(NotLoggedIn):
            client(transport, Credentials()).list_pipelines()
