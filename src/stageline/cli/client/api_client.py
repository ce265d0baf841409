"""A thin, typed client of the v5 API for the command line: one method per call it makes.

It authenticates with the profile's token (`X-Auth-Token`) or signs with its AK/SK exactly as the
official SDK does. Every failure becomes one of three exceptions the commands turn into a
one-line message: `ApiError` (the server answered with an error body), `Unreachable` (no
answer) and `NotLoggedIn` (no usable credentials, or the server refused them).
"""

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

import httpx

from stageline.auth.signing import sign
from stageline.cli.client.errors import ApiError, ClientError, NotLoggedIn, Unreachable
from stageline.schemas.responses.latest_run import PipelineLatestRun
from stageline.schemas.responses.pipelines import PipelineDetail, PipelineItem, PipelineList
from stageline.schemas.responses.runs import LogWindow, RunDetail, RunList
from stageline.schemas.responses.service import AuthProject, AuthProjects

LOGIN_AGAIN = "run `stageline login` again"
NONCE_HEADER = "X-Stageline-Nonce"
"""Random per request and signed with it: the server carries out a signed request that changes
something once, and two identical commands in the same second of X-Sdk-Date must not look like
one request sent twice."""
PAGE = 100
"""The largest page ListPipelines and ListPipelineRuns give, and batch status' default limit."""
LOG_LINES = 1000
"""Log lines asked for per ShowPipelineLog call."""


@dataclass(frozen=True)
class Credentials:
    token: str = ""
    ak: str = ""
    sk: str = ""


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error_code") or body.get("errorCode") or "")
        message = str(body.get("error_msg") or body.get("errorMsg") or body.get("detail") or "")
    else:
        code, message = "", ""
    return ApiError(response.status_code, code, message or response.text[:200] or "no details")


class ApiClient:
    def __init__(
        self,
        server: str,
        credentials: Credentials,
        *,
        project_id: str = "",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.project_id = project_id
        self._credentials = credentials
        # trust_env=False: a proxy set for the internet must not carry calls to a local server.
        self._http = httpx.Client(timeout=timeout, trust_env=False, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        url = f"{self.server}{path}"
        if params:  # %20 for a space, as the SDK encodes (and signs) a query
            url += "?" + urlencode(sorted(params.items()), quote_via=quote)
        content = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        credentials = self._credentials
        if authenticated:
            if credentials.token:
                headers["X-Auth-Token"] = credentials.token
            elif credentials.ak and credentials.sk:
                headers[NONCE_HEADER] = secrets.token_hex(16)
                headers = sign(method, url, headers, content, credentials.ak, credentials.sk)
            else:
                raise NotLoggedIn(f"not logged in: {LOGIN_AGAIN}")
        try:
            response = self._http.request(method, url, headers=headers, content=content)
        except httpx.ConnectError as error:
            raise Unreachable(f"cannot reach the server at {self.server}: {error}") from None
        except httpx.TimeoutException:
            raise Unreachable(f"the server at {self.server} did not answer in time") from None
        except httpx.HTTPError as error:
            raise Unreachable(f"cannot talk to the server at {self.server}: {error}") from None
        if response.status_code >= 400:
            refused = _error_of(response)
            if response.status_code == 401 and authenticated:
                what = "token" if credentials.token else "access key"
                raise NotLoggedIn(f"the server refused your {what} ({refused}): {LOGIN_AGAIN}")
            raise refused
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, "", "the answer is not JSON") from None

    @property
    def _v5(self) -> str:
        if not self.project_id:
            raise ClientError(
                "no project: give --project, set STAGELINE_PROJECT or log in with one"
            )
        return f"/v5/{self.project_id}/api/pipelines"

    # -- identity -------------------------------------------------------------------------------

    def issue_token(self, user: str, password: str) -> tuple[str, str]:
        """(token, expires_at) for a password login (POST /v3/auth/tokens)."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "password": password}},
                }
            }
        }
        try:
            response = self._send("POST", "/v3/auth/tokens", body=body, authenticated=False)
        except ApiError as error:
            if error.status_code == 401:
                raise NotLoggedIn(f"login refused ({error})") from None
            raise
        token = response.headers.get("X-Subject-Token", "")
        if not token:
            raise ApiError(response.status_code, "", "the answer carries no X-Subject-Token")
        expires_at = str(response.json().get("token", {}).get("expires_at", ""))
        return token, expires_at

    def auth_projects(self) -> list[AuthProject]:
        """The projects the credentials may act in, by name (GET /v3/auth/projects)."""
        return cast(AuthProjects, self._json("GET", "/v3/auth/projects"))["projects"]

    # -- pipelines ------------------------------------------------------------------------------

    def list_pipelines(self) -> list[PipelineItem]:
        items: list[PipelineItem] = []
        while True:
            query = {"offset": len(items), "limit": PAGE, "sort_key": "name", "sort_dir": "asc"}
            page = cast(PipelineList, self._json("POST", f"{self._v5}/list", body=query))
            items.extend(page["pipelines"])
            if not page["pipelines"] or len(items) >= page["total"]:
                return items

    def pipeline(self, pipeline_id: str) -> PipelineDetail:
        return cast(PipelineDetail, self._json("GET", f"{self._v5}/{pipeline_id}"))

    def create_pipeline(self, body: dict[str, Any]) -> str:
        return str(self._json("POST", self._v5, body=body)["pipeline_id"])

    def update_pipeline(self, pipeline_id: str, body: dict[str, Any]) -> None:
        self._send("PUT", f"{self._v5}/{pipeline_id}", body=body)

    def latest_status(self, pipeline_ids: list[str]) -> list[PipelineLatestRun]:
        """Batch status, asked in slices the server accepts."""
        found: list[PipelineLatestRun] = []
        for start in range(0, len(pipeline_ids), PAGE):
            ids = pipeline_ids[start : start + PAGE]
            found.extend(self._json("POST", f"{self._v5}/status", body=ids))
        return found

    # -- runs -----------------------------------------------------------------------------------

    def run_pipeline(self, pipeline_id: str, body: dict[str, Any]) -> str:
        started = self._json("POST", f"{self._v5}/{pipeline_id}/run", body=body)
        return str(started["pipeline_run_id"])

    def run_detail(
        self, pipeline_id: str, *, run_id: str | None = None, run_number: int | None = None
    ) -> RunDetail:
        params = {}
        if run_id:
            params["pipeline_run_id"] = run_id
        if run_number is not None:
            params["pipeline_run_number"] = str(run_number)
        path = f"{self._v5}/{pipeline_id}/pipeline-runs/detail"
        return cast(RunDetail, self._json("GET", path, params=params))

    def list_runs(self, pipeline_id: str, *, limit: int) -> list[PipelineLatestRun]:
        runs: list[PipelineLatestRun] = []
        while len(runs) < limit:
            query = {"offset": len(runs), "limit": min(PAGE, limit - len(runs))}
            path = f"{self._v5}/{pipeline_id}/pipeline-runs/list"
            page = cast(RunList, self._json("POST", path, body=query))
            runs.extend(page["pipeline_runs"])
            if not page["pipeline_runs"] or len(runs) >= page["total"]:
                break
        return runs

    def step_log(
        self, pipeline_id: str, run_id: str, job_run_id: str, step_run_id: str, *, start: int
    ) -> LogWindow:
        path = (
            f"{self._v5}/{pipeline_id}/pipeline-runs/{run_id}/jobs/{job_run_id}"
            f"/steps/{step_run_id}/logs"
        )
        body = {"start_offset": start, "limit": LOG_LINES, "sort": "asc"}
        return cast(LogWindow, self._json("POST", path, body=body))

    def step_log_lines(
        self, pipeline_id: str, run_id: str, job_run_id: str, step_run_id: str, *, start: int = 0
    ) -> Iterator[tuple[int, str]]:
        """(next offset, text) windows from `start` up to the lines the step has so far."""
        while True:
            window = self.step_log(pipeline_id, run_id, job_run_id, step_run_id, start=start)
            end = int(window["end_offset"])
            if end > start:
                yield end, window["log"]
            if end <= start or not window["has_more"]:
                return
            start = end

    def stop_run(self, pipeline_id: str, run_id: str) -> None:
        self._send("POST", f"{self._v5}/{pipeline_id}/pipeline-runs/{run_id}/stop")

    def retry_run(self, pipeline_id: str, run_id: str, job_run_ids: list[str] | None) -> None:
        body = {"job_run_ids": job_run_ids} if job_run_ids is not None else None
        self._send("PUT", f"{self._v5}/{pipeline_id}/pipeline-runs/{run_id}/retry", body=body)

    def decide_review(
        self,
        pipeline_id: str,
        run_id: str,
        *,
        job_run_id: str | None,
        step_run_id: str,
        approve: bool,
        comment: str | None,
    ) -> None:
        base = f"{self._v5}/{pipeline_id}/pipeline-runs/{run_id}"
        if job_run_id is None:  # a stage-entry checkpoint: it can only be passed
            self._send("POST", f"{base}/steps/{step_run_id}/manual/pass")
            return
        verb = "pass" if approve else "refuse"
        params = {"approval_description": comment} if comment else None
        self._send("POST", f"{base}/jobs/{job_run_id}/steps/{step_run_id}/{verb}", params=params)
