"""/openapi.json tells the truth: the statuses and bodies it declares are the ones the app sends.

The first tests read the document alone. The others make real requests to the quiet server (no
agent) and check each answer against the operation it went to (`tests.openapi_check`): the
status must be declared there, and the JSON body must have the declared keys and types.
"""

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient

from stageline.agent.transport import NONCE_HEADER
from stageline.api.app import create_app
from stageline.auth import accounts, signing
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from tests.conftest import TEST_SECRET
from tests.factories import PASSING, World, definition, shell_job, stage
from tests.openapi_check import check_answer
from tests.wire import BUILD_PARAM_KEYS, LATEST_RUN_KEYS

PIPELINES = "/v5/{project_id}/api/pipelines"
PIPELINE = PIPELINES + "/{pipeline_id}"
RUN = PIPELINE + "/pipeline-runs/{pipeline_run_id}"
STEP = RUN + "/jobs/{job_run_id}/steps/{step_run_id}"
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
SDK_OPERATIONS = {
    "batch_show_pipelines_latest_status",
    "create_pipeline_new",
    "list_pipelines",
    "show_pipeline_detail",
    "update_pipeline_info",
    "delete_pipeline",
    "run_pipeline",
    "stop_pipeline_run",
    "retry_pipeline_run",
    "show_step_outputs",
    "show_pipeline_run_detail",
    "list_pipeline_runs",
    "show_pipeline_log",
    "accept_manual_review",
    "reject_manual_review",
    "accept_checkpoint",
    "show_pipeline_artifacts",
    "download_pipeline_artifact",
    "show_pipeline_run_history",
    "keystone_create_token",
    "keystone_list_auth_projects",  # Huawei IAM's method name (its SDK, not the pipeline one)
    "health",
    "claim_job",
    "report_events",
    "heartbeat",
    "upload_artifact",
    "bench_limit",  # Stageline's own: not an SDK method
    "receive_webhook",  # Stageline's own: forges deliver webhooks here
    "pipeline_schema",  # Stageline's own: the JSON Schema of the pipeline YAML, for editors
    "stream_pipelines_latest_status",  # Stageline's own: batch status as Server-Sent Events
    "show_pipelines_latest_status",  # Stageline's own: batch status as a conditional GET
    "show_cc_xml",  # Stageline's own: the CCTray feed for build monitors
    "show_cctray_xml",  # the same at the other name monitors look for
    "show_pipeline_badge",  # Stageline's own: a status badge for READMEs
}
"""Operation IDs are the handler names, which are the SDK's method names: they must not move."""
GIT_URL = "https://git.example.com/openapi/app.git"
JSON = "application/json"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """/openapi.json of an app with every optional route on (serving it reads no database)."""
    data_dir = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'unused.db'}",
        data_dir=data_dir,
        secret_key=TEST_SECRET,
        bench_routes=True,
    )
    response = TestClient(create_app(settings)).get("/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in document["paths"].items():
        for operation in path_item.values():
            yield path, operation


def error_schema(operation: dict[str, Any], status: str) -> Any:
    return operation["responses"][status]["content"]["application/json"]["schema"]


# -- the document alone --------------------------------------------------------------------------


def test_no_operation_declares_the_422_the_server_never_sends(document: dict[str, Any]) -> None:
    declaring = [op["operationId"] for _, op in operations(document) if "422" in op["responses"]]
    assert declaring == []
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_operation_ids_are_the_sdk_method_names(document: dict[str, Any]) -> None:
    assert {op["operationId"] for _, op in operations(document)} == SDK_OPERATIONS


def test_every_v5_operation_declares_the_callers_errors(document: dict[str, Any]) -> None:
    """Each authenticates (401), checks a role (403) on a project that must exist (404)."""
    v5 = [op for path, op in operations(document) if path.startswith("/v5/")]
    # the SDK's 18, the benchmark's limit route, run history, GET status and its stream
    assert len(v5) == 22
    for operation in v5:
        for status in ("401", "403", "404"):
            assert error_schema(operation, status) == ERROR_BODY, (operation["operationId"], status)


def test_every_error_status_has_the_error_body(document: dict[str, Any]) -> None:
    for _, operation in operations(document):
        errors = [status for status in operation["responses"] if int(status) >= 400]
        assert {"413", "500"} <= set(errors), operation["operationId"]
        for status in errors:
            assert error_schema(operation, status) == ERROR_BODY, (operation["operationId"], status)


def test_429_with_retry_after_is_declared_wherever_a_caller_authenticates(
    document: dict[str, Any],
) -> None:
    """A client that keeps failing to authenticate (signatures, passwords) must wait. Webhook
    deliveries are the exception: a 128-bit hook ID and a 256-bit secret leave nothing to
    guess, and a forge told to wait would count it as a failed delivery."""
    for _, operation in operations(document):
        if operation["operationId"] == "receive_webhook":
            continue
        responses = operation["responses"]
        assert ("429" in responses) == ("401" in responses), operation["operationId"]
        if "429" in responses:
            assert error_schema(operation, "429") == ERROR_BODY
            assert "Retry-After" in responses["429"]["headers"], operation["operationId"]


def test_400_is_declared_exactly_where_a_request_can_be_invalid(document: dict[str, Any]) -> None:
    """Only what a request carries besides its path can be invalid: a body or query parameters.
    Path parameters are any string (an unknown ID is a 404)."""
    for _, operation in operations(document):
        queried = any(p["in"] == "query" for p in operation.get("parameters", []))
        can_be_invalid = "requestBody" in operation or queried
        assert ("400" in operation["responses"]) == can_be_invalid, operation["operationId"]


def test_415_is_declared_exactly_where_a_json_body_is_taken(document: dict[str, Any]) -> None:
    """Except webhook deliveries: a forge's body is read whatever its content type says."""
    for _, operation in operations(document):
        if operation["operationId"] == "receive_webhook":
            assert "415" not in operation["responses"]
            continue
        takes_json = "application/json" in operation.get("requestBody", {}).get("content", {})
        assert ("415" in operation["responses"]) == takes_json, operation["operationId"]


def test_batch_status_answers_an_array_of_pipeline_latest_runs(document: dict[str, Any]) -> None:
    operation = document["paths"][PIPELINES + "/status"]["post"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    assert schema["items"] == {"$ref": "#/components/schemas/PipelineLatestRun"}
    schemas = document["components"]["schemas"]
    latest = schemas["PipelineLatestRun"]
    assert set(latest["properties"]) == set(latest["required"]) == LATEST_RUN_KEYS
    assert {"$ref": "#/components/schemas/BuildParams"} in latest["properties"]["build_params"][
        "anyOf"
    ]
    assert set(schemas["BuildParams"]["properties"]) == BUILD_PARAM_KEYS


# -- real answers --------------------------------------------------------------------------------


@dataclass
class DocumentedClient:
    """Requests named by their path template; every answer is checked against the document."""

    client: httpx.Client
    document: dict[str, Any]

    def call(
        self,
        method: str,
        template: str,
        expect: int,
        ids: dict[str, str],
        query: str = "",
        **request: Any,
    ) -> httpx.Response:
        url = template.format(**ids) + (f"?{query}" if query else "")
        response = self.client.request(method, url, **request)
        assert response.status_code == expect, (method, template, response.text)
        check_answer(self.document, method, template, response)
        return response


@pytest.fixture
def api(quiet_client: TestClient) -> DocumentedClient:
    served: dict[str, Any] = quiet_client.get("/openapi.json").json()
    return DocumentedClient(quiet_client, served)


def test_pipeline_and_run_answers_are_documented(api: DocumentedClient, quiet_world: World) -> None:
    admin = quiet_world.admin.headers
    developer = quiet_world.developer.headers
    viewer = quiet_world.viewer.headers
    ids = {"project_id": quiet_world.project_id}
    pipeline = {
        "name": f"openapi-{secrets.token_hex(4)}",
        "is_publish": False,
        "definition": PASSING,
        "sources": [
            {"type": "code", "params": {"git_type": "github", "git_url": GIT_URL, "alias": "a"}}
        ],
        "variables": [{"name": "TOKEN", "value": "s3cret", "is_secret": True}],
        "schedules": [{"type": "fixed", "name": "nightly", "enable": False}],
        "concurrency_control": {"concurrency_number": 1, "exceed_action": "ABORT"},
    }
    created = api.call("POST", PIPELINES, 200, ids, json=pipeline, headers=admin)
    ids["pipeline_id"] = created.json()["pipeline_id"]
    api.call("PUT", PIPELINE, 200, ids, json=pipeline, headers=admin)
    api.call("GET", PIPELINE, 200, ids, headers=viewer)
    api.call("POST", PIPELINES, 409, ids, json=pipeline, headers=admin)  # the name is taken

    source = {"git_type": "github", "git_url": GIT_URL, "build_params": {"build_type": "branch"}}
    run = {"sources": [{"type": "code", "params": source}], "description": "documented"}
    started = api.call("POST", PIPELINE + "/run", 200, ids, json=run, headers=developer)
    ids["pipeline_run_id"] = started.json()["pipeline_run_id"]
    refused = api.call("POST", PIPELINE + "/run", 409, ids, headers=developer)  # limit 1, ABORT
    assert set(refused.json()["error"]) == {"pipeline_run_id", "queue_id"}

    api.call("POST", PIPELINES + "/status", 200, ids, json=[ids["pipeline_id"]], headers=viewer)
    listed = api.call("POST", PIPELINES + "/list", 200, ids, json={"limit": 100}, headers=viewer)
    assert any(p["latest_run"] for p in listed.json()["pipelines"])
    api.call("POST", PIPELINE + "/pipeline-runs/list", 200, ids, json={}, headers=viewer)
    detail = api.call(
        "GET",
        PIPELINE + "/pipeline-runs/detail",
        200,
        ids,
        params={"pipeline_run_id": ids["pipeline_run_id"]},
        headers=viewer,
    ).json()
    job = detail["stages"][0]["jobs"][0]
    ids |= {"job_run_id": job["id"], "step_run_id": job["steps"][0]["id"]}
    api.call("POST", STEP + "/logs", 200, ids, json={"limit": 10, "sort": "asc"}, headers=viewer)
    outputs = {"step_run_ids": ids["step_run_id"]}
    api.call("GET", RUN + "/steps/outputs", 200, ids, params=outputs, headers=viewer)
    api.call("GET", RUN + "/artifacts", 200, ids, headers=viewer)

    api.call("POST", RUN + "/stop", 200, ids, headers=developer)
    api.call("POST", RUN + "/stop", 409, ids, headers=developer)  # it has ended
    api.call("POST", STEP + "/pass", 404, ids, headers=developer)  # not a review step
    api.call("DELETE", PIPELINE, 200, ids, headers=admin)
    api.call("GET", PIPELINE, 404, ids, headers=viewer)


def test_error_answers_are_documented(api: DocumentedClient, quiet_world: World) -> None:
    viewer = quiet_world.viewer.headers
    ids = {"project_id": quiet_world.project_id, "pipeline_id": secrets.token_hex(16)}
    status = PIPELINES + "/status"
    api.call("POST", status, 401, ids, json=[])
    api.call("POST", status, 401, ids, json=[], headers={"X-Auth-Token": "not-a-token"})
    api.call("POST", status, 403, ids, json=[], headers=quiet_world.outsider.headers)
    api.call("POST", PIPELINES, 403, ids, json={}, headers=viewer)  # admins create pipelines
    unknown_project = {**ids, "project_id": secrets.token_hex(16)}
    api.call("POST", status, 404, unknown_project, json=[], headers=viewer)
    api.call("GET", PIPELINE, 404, ids, headers=viewer)
    api.call("POST", status, 400, ids, json=["not-an-id"], headers=viewer)
    api.call("GET", PIPELINE + "/pipeline-runs/detail", 404, ids, headers=viewer)
    typed_text = {**viewer, "Content-Type": "text/plain"}
    api.call("POST", status, 415, ids, content=b"[]", headers=typed_text)
    too_large = {**viewer, "Content-Type": "application/json", "Content-Length": str(13 << 20)}
    api.call("POST", status, 413, ids, content=b"[]", headers=too_large)


def test_a_client_that_must_wait_is_answered_as_documented(
    api: DocumentedClient, quiet_world: World, quiet_db: Database, quiet_settings: Settings
) -> None:
    pair = accounts.create_access_key(
        quiet_db, quiet_settings, user_name=quiet_world.viewer.name, now=system_clock()
    )
    ids = {"project_id": quiet_world.project_id}
    path = PIPELINES.format(**ids) + "/status"
    answers = []
    for _ in range(quiet_settings.signature_failure_limit + 10):
        headers = signing.sign(
            "POST", f"http://testserver{path}", {"Content-Type": JSON}, b"[]", pair.ak, "made-up"
        )
        answers.append(api.client.post(path, content=b"[]", headers=headers))
        if answers[-1].status_code == 429:
            break
    assert answers[-1].status_code == 429, [a.status_code for a in answers]
    check_answer(api.document, "POST", PIPELINES + "/status", answers[-1])


def test_token_and_health_answers_are_documented(api: DocumentedClient, quiet_world: World) -> None:
    user = quiet_world.viewer

    def login(password: str) -> dict[str, Any]:
        identity = {"name": user.name, "password": password}
        password_method = {"methods": ["password"], "password": {"user": identity}}
        return {"auth": {"identity": password_method, "scope": {"project": {"name": "x"}}}}

    scoped = login(user.password)
    scoped["auth"]["scope"] = {"project": {"id": quiet_world.project_id}}
    issued = api.call("POST", "/v3/auth/tokens", 201, {}, json=scoped)
    assert issued.headers["X-Subject-Token"]
    api.call("POST", "/v3/auth/tokens", 401, {}, json=login("wrong"))
    api.call("POST", "/v3/auth/tokens", 400, {}, json={"auth": {}})
    text = {"Content-Type": "text/plain"}
    api.call("POST", "/v3/auth/tokens", 415, {}, content=json.dumps(scoped), headers=text)
    token = {"X-Auth-Token": issued.headers["X-Subject-Token"]}
    api.call("GET", "/v3/auth/projects", 200, {}, headers=token)
    api.call("GET", "/v3/auth/projects", 401, {})
    api.call("GET", "/health", 200, {})


def test_agent_answers_are_documented(
    api: DocumentedClient, quiet_world: World, quiet_db: Database, quiet_settings: Settings
) -> None:
    name = f"openapi-{secrets.token_hex(4)}"
    key = accounts.create_agent(quiet_db, quiet_settings, name=name, now=system_clock())

    def signed(method: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
        """`call` arguments for a request signed the way the agent signs it."""
        unsigned = content_type != "application/json"  # an upload: its body is not signed
        headers = signing.sign(
            method,
            f"http://testserver{path}",
            {
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                NONCE_HEADER: secrets.token_hex(8),  # as the agent: each request unique
            },
            signing.UNSIGNED_BODY if unsigned else body,
            key.ak,
            key.sk,
        )
        return {"content": body, "headers": headers}

    def agent(
        method: str, template: str, expect: int, ids: dict[str, str], payload: Any
    ) -> httpx.Response:
        request = signed(method, template.format(**ids), json.dumps(payload).encode(), JSON)
        return api.call(method, template, expect, ids, **request)

    pool = f"pool-{secrets.token_hex(6)}"
    job_spec = shell_job("ONLY", "echo hi", resource=json.dumps({"pool": pool}))
    pipeline_id = quiet_world.create_pipeline(definition(stage("S", job_spec)))
    run_id = quiet_world.run(pipeline_id)

    claim = {"agent": name, "pool": pool, "wait_seconds": 0}
    job = agent("POST", "/agent/v1/claim", 200, {}, claim).json()
    agent("POST", "/agent/v1/claim", 204, {}, claim)
    step_run_id = job["steps"][0]["step_run_id"]
    ids = {"job_run_id": job["job_run_id"], "step_run_id": step_run_id}
    reported = [
        {"seq": 1, "kind": "job_started"},
        {"seq": 2, "kind": "step_started", "step_run_id": step_run_id},
        {
            "seq": 3,
            "kind": "step_log",
            "step_run_id": step_run_id,
            "first_line": 0,
            "lines": ["hi"],
        },
        {"seq": 4, "kind": "step_outputs", "step_run_id": step_run_id}
        | {"outputs": [{"key": "version", "value": "1.0"}]},
    ]
    events = {"dispatch_id": job["dispatch_id"], "events": reported}
    agent("POST", "/agent/v1/jobs/{job_run_id}/events", 200, ids, events)
    stale = {**events, "dispatch_id": "0" * 32}
    agent("POST", "/agent/v1/jobs/{job_run_id}/events", 409, ids, stale)
    beat = {"jobs": {job["job_run_id"]: job["dispatch_id"]}}
    agent("POST", "/agent/v1/heartbeat", 200, {}, beat)
    upload = "/agent/v1/jobs/{job_run_id}/artifacts"
    query = urlencode({"dispatch_id": job["dispatch_id"], "step_run_id": step_run_id})
    query += "&name=out%2Fapp.txt"
    request = signed("PUT", f"{upload.format(**ids)}?{query}", b"built", "application/octet-stream")
    api.call("PUT", upload, 200, ids, query=query, **request)

    person = quiet_world.developer.headers
    api.call("POST", "/agent/v1/claim", 403, {}, json=claim, headers=person)
    api.call("POST", "/agent/v1/claim", 401, {}, json=claim)

    # What the agent reported, as the v5 API shows it.
    ids |= {"project_id": quiet_world.project_id, "pipeline_id": pipeline_id}
    ids["pipeline_run_id"] = run_id
    viewer = quiet_world.viewer.headers
    window = {"limit": 10, "sort": "asc"}
    logged = api.call("POST", STEP + "/logs", 200, ids, json=window, headers=viewer)
    assert logged.json()["log"] == "hi\n"
    outputs = {"step_run_ids": step_run_id}
    api.call("GET", RUN + "/steps/outputs", 200, ids, params=outputs, headers=viewer)
    artifacts = api.call("GET", RUN + "/artifacts", 200, ids, headers=viewer).json()["artifacts"]
    ids["artifact_id"] = artifacts[0]["artifact_download_url_with_id"].split("/")[-2]
    downloaded = api.call(
        "GET", RUN + "/artifacts/{artifact_id}/download", 200, ids, headers=viewer
    )
    assert downloaded.content == b"built"
    api.call("POST", RUN + "/stop", 200, ids, headers=person)
