"""The agent's HTTP client for `/agent/v1/…`, signed with AK/SK exactly as the SDK signs.

Implements `schemas.jobs.JobSource`. Failures are sorted for the caller: `Fenced` (the claim is
no longer ours: stop the job), `Rejected` (the server refused the request itself: resending it
will not help), and `Unreachable` (try again later) with its kind `ServerFailed` (the server
answered 5xx to this one request).
"""

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from stageline.auth.signing import UNSIGNED_BODY, sign
from stageline.schemas.jobs import (
    ClaimRequest,
    EventBatch,
    EventsApplied,
    Heartbeat,
    HeartbeatReply,
    JobAssignment,
)

ASSIGNMENT = TypeAdapter(JobAssignment)
UPLOAD_CHUNK = 1024 * 1024
NONCE_HEADER = "X-Stageline-Nonce"
"""A random value in every request, signed with it: the server carries out a signed claim or
upload once, and an attempt sent again (after a lost answer) must not look like a copy of the
first even within the same second of X-Sdk-Date."""


def _unique(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, NONCE_HEADER: secrets.token_hex(16)}


class Unreachable(Exception):
    """No answer, or a server error: worth trying again."""


class ServerFailed(Unreachable):
    """The server answered, with a 5xx: worth trying again, but it says nothing about other
    requests (one job's reports may fail while the rest go through)."""


class Rejected(Exception):
    """The server refused the request (4xx other than 409)."""


class Fenced(Exception):
    """409: the claim is no longer current (the job was taken back, or it is unknown)."""


class HttpJobSource:
    def __init__(
        self, server: str, *, access_key: str, secret_key: str, timeout: float = 30.0
    ) -> None:
        self.server = server.rstrip("/")
        self._ak = access_key
        self._sk = secret_key
        self._timeout = timeout
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def claim(self, request: ClaimRequest) -> JobAssignment | None:
        response = self._send(
            "POST", "/agent/v1/claim", request, timeout=request.wait_seconds + self._timeout
        )
        if response.status_code == 204:
            return None
        return ASSIGNMENT.validate_python(response.json())

    def report(self, job_run_id: str, batch: EventBatch) -> EventsApplied:
        response = self._send("POST", f"/agent/v1/jobs/{job_run_id}/events", batch)
        return EventsApplied.model_validate_json(response.content)

    def heartbeat(self, beat: Heartbeat) -> HeartbeatReply:
        response = self._send("POST", "/agent/v1/heartbeat", beat)
        return HeartbeatReply.model_validate_json(response.content)

    def upload(
        self, job_run_id: str, dispatch_id: str, step_run_id: str, name: str, path: Path
    ) -> None:
        query = httpx.QueryParams(dispatch_id=dispatch_id, step_run_id=step_run_id, name=name)
        url = f"{self.server}/agent/v1/jobs/{job_run_id}/artifacts?{query}"
        size = path.stat().st_size
        headers = sign(
            "PUT",
            url,
            _unique({"Content-Type": "application/octet-stream", "Content-Length": str(size)}),
            UNSIGNED_BODY if size else b"",
            self._ak,
            self._sk,
        )
        self._check(self._request("PUT", url, headers=headers, content=_chunks(path)))

    def _send(
        self, method: str, path: str, body: Any, *, timeout: float | None = None
    ) -> httpx.Response:
        content = body.model_dump_json().encode() if hasattr(body, "model_dump_json") else b""
        url = f"{self.server}{path}"
        headers = sign(
            method, url, _unique({"Content-Type": "application/json"}), content, self._ak, self._sk
        )
        response = self._request(method, url, headers=headers, content=content, timeout=timeout)
        return self._check(response)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        timeout = kwargs.pop("timeout", None) or self._timeout
        try:
            return self._http.request(method, url, timeout=timeout, **kwargs)
        except httpx.HTTPError as error:
            raise Unreachable(f"{method} {url}: {error}") from None

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code == 409 or response.status_code == 404:
            raise Fenced(_message(response))
        if response.status_code >= 500:
            raise ServerFailed(_message(response))
        if response.status_code >= 400:
            raise Rejected(_message(response))
        return response


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('error_code')}: {body.get('error_msg')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(UPLOAD_CHUNK):
            yield chunk
