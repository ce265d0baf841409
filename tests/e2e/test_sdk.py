"""The official Huawei Cloud SDK against a real server: create, run, watch, stop, read, delete.

Every call here is AK/SK-signed by `huaweicloudsdkcodeartspipeline` exactly as it would sign for
the cloud service; raw-JSON checks use plain HTTP with an IAM-style token.
"""

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcodeartspipeline.v2 import (
    BatchShowPipelinesLatestStatusRequest,
    DeletePipelineRequest,
    ListPipelineQuery,
    ListPipelineRunsQuery,
    ListPipelineRunsRequest,
    ListPipelinesRequest,
    LogQuery,
    PipelineLatestRun,
    RunPipelineDTO,
    RunPipelineRequest,
    ShowPipelineDetailRequest,
    ShowPipelineLogRequest,
    ShowPipelineRunDetailRequest,
    StopPipelineRunRequest,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from tests.factories import definition, shell_job, stage
from tests.wire import BUILD_PARAM_KEYS, LATEST_RUN_KEYS

from .conftest import POLL_TIMEOUT, Tenant, code_source, e2e_repo, sdk_client

pytestmark = pytest.mark.slow

STAGE_STATUS_KEYS = {"name", "sequence", "status", "start_time", "end_time"}
STAGE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DISPLAY_TZ = timezone(timedelta(hours=8))  # STAGELINE_DISPLAY_TIMEZONE of the e2e server
ID = re.compile(r"^[0-9a-zA-Z]{32}$")

BRANCH = "release/1.x"
BUILD_LINES = ["building alpha", "building beta"]
TEST_LINES = ["testing gamma"]


def displayed(epoch_ms: int) -> str:
    """An epoch-ms instant as a stage time string in the server's display zone."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=DISPLAY_TZ)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def echo(lines: list[str]) -> str:
    return "\n".join(f'echo "{line}"' for line in lines)


def random_id() -> str:
    return secrets.token_hex(16)


@dataclass
class Finished:
    """A two-stage pipeline with a code source, run once by the developer, COMPLETED."""

    pipeline_id: str
    name: str
    run_id: str
    latest: PipelineLatestRun


@pytest.fixture(scope="module")
def completed(tenant: Tenant) -> Finished:
    name = f"e2e-two-stages-{secrets.token_hex(3)}"
    pipeline_id = tenant.create_pipeline(
        definition(
            stage("BUILD", shell_job("COMPILE", echo(BUILD_LINES)), name="Build"),
            stage("TEST", shell_job("UNIT", echo(TEST_LINES)), name="Test (unit)"),
        ),
        sources=[code_source(e2e_repo().file_url, BRANCH)],
        name=name,
    )
    run_id = tenant.run(pipeline_id)
    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    return Finished(pipeline_id, name, run_id, latest)


# -- batch status ----------------------------------------------------------------------------


def test_a_completed_run_fills_every_field_of_batch_status(
    tenant: Tenant, completed: Finished
) -> None:
    item = completed.latest
    developer = tenant.accounts["developer"]
    assert item.pipeline_id == completed.pipeline_id
    assert item.pipeline_run_id == completed.run_id
    assert ID.match(item.pipeline_run_id)
    assert item.executor_id == developer.user_id
    assert item.executor_name == developer.display_name
    assert item.status == "COMPLETED"
    assert item.run_number == 1
    assert item.trigger_type == "Manual"

    assert isinstance(item.start_time, int)
    assert isinstance(item.end_time, int)
    assert item.end_time >= item.start_time > 1_600_000_000_000  # epoch milliseconds

    stages = item.stage_status_list
    assert [s.name for s in stages] == ["Build", "Test (unit)"]
    assert [s.sequence for s in stages] == [0, 1]
    assert [s.status for s in stages] == ["COMPLETED", "COMPLETED"]
    run_window = (displayed(item.start_time), displayed(item.end_time))
    for s in stages:
        assert isinstance(s.start_time, str)
        assert isinstance(s.end_time, str)
        assert STAGE_TIME.match(s.start_time), s.start_time
        assert STAGE_TIME.match(s.end_time), s.end_time
        # Same format, same zone: plain string order is time order.
        assert run_window[0] <= s.start_time <= s.end_time <= run_window[1]
    assert stages[0].end_time <= stages[1].start_time

    params = item.build_params
    assert params is not None
    assert params.build_type == "branch"
    assert params.target_branch == BRANCH
    assert params.git_url == e2e_repo().file_url
    assert params.event_type == "Manual"
    # the head of the branch when the run started, and its message
    assert params.commit_id == e2e_repo().head(BRANCH)
    assert params.message == "e2e: release 1.x"
    fixed = {"build_type", "target_branch", "git_url", "event_type", "commit_id", "message"}
    for key in BUILD_PARAM_KEYS - fixed:
        assert getattr(params, key) is None, key
    assert item.artifact_params is None

    public = tenant.server.public_base_url
    assert item.modify_url.startswith(public + "/")
    assert completed.pipeline_id in item.modify_url
    assert item.detail_url.startswith(public + "/")
    assert completed.run_id in item.detail_url


def test_batch_status_json_has_all_fourteen_keys_with_explicit_nulls(
    tenant: Tenant, completed: Finished
) -> None:
    response = tenant.raw(
        "POST",
        f"/v5/{tenant.project_id}/api/pipelines/status",
        json_body=[completed.pipeline_id],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    item = body[0]
    assert set(item) == LATEST_RUN_KEYS
    assert item["artifact_params"] is None
    assert item["build_params"] == {
        **dict.fromkeys(BUILD_PARAM_KEYS),
        "build_type": "branch",
        "event_type": "Manual",
        "target_branch": BRANCH,
        "git_url": e2e_repo().file_url,
        "commit_id": e2e_repo().head(BRANCH),
        "message": "e2e: release 1.x",
    }
    assert type(item["start_time"]) is int
    assert type(item["end_time"]) is int
    assert type(item["run_number"]) is int
    for s in item["stage_status_list"]:
        assert set(s) == STAGE_STATUS_KEYS
        assert type(s["sequence"]) is int
    sdk_view = completed.latest.to_dict()
    for key in LATEST_RUN_KEYS - {"build_params", "stage_status_list", "artifact_params"}:
        assert item[key] == sdk_view[key], key


def test_a_second_run_becomes_the_latest_with_run_number_two(tenant: Tenant) -> None:
    pipeline_id = tenant.create_pipeline(
        definition(stage("ONLY", shell_job("JOB", "echo again"), name="Only")),
        sources=[code_source()],
    )
    first = tenant.run(pipeline_id)
    assert tenant.wait_run(pipeline_id, first, "COMPLETED").run_number == 1
    second = tenant.run(pipeline_id)
    assert second != first
    latest = tenant.wait_run(pipeline_id, second, "COMPLETED")
    assert latest.pipeline_run_id == second
    assert latest.run_number == 2
    assert latest.build_params.target_branch == "main"

    client = tenant.client("viewer")
    by_number = client.show_pipeline_run_detail(
        ShowPipelineRunDetailRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_number="1"
        )
    )
    assert by_number.id == first
    assert by_number.run_number == 1


def test_batch_status_omits_never_run_and_unknown_pipelines(
    tenant: Tenant, completed: Finished
) -> None:
    never_run = tenant.create_pipeline(definition(stage("S", shell_job("J", "true"))))
    items = tenant.latest(random_id(), never_run, completed.pipeline_id, completed.pipeline_id)
    assert [i.pipeline_id for i in items] == [completed.pipeline_id]
    assert tenant.latest() == []
    empty = tenant.raw("POST", f"/v5/{tenant.project_id}/api/pipelines/status", json_body=[])
    assert empty.status_code == 200
    assert empty.json() == []


def test_a_failing_stage_fails_the_run_and_later_stages_never_start(tenant: Tenant) -> None:
    pipeline_id = tenant.create_pipeline(
        definition(
            stage("ONE", shell_job("A", "echo first"), name="One"),
            stage("TWO", shell_job("B", 'echo "about to fail"\nexit 1'), name="Two"),
            stage("THREE", shell_job("C", "echo never"), name="Three"),
        ),
        sources=[code_source()],
    )
    run_id = tenant.run(pipeline_id)
    item = tenant.wait_run(pipeline_id, run_id, "FAILED")

    assert item.status == "FAILED"
    assert item.end_time >= item.start_time
    stages = item.stage_status_list
    assert [s.name for s in stages] == ["One", "Two", "Three"]
    assert [s.sequence for s in stages] == [0, 1, 2]
    assert [s.status for s in stages] == ["COMPLETED", "FAILED", "INIT"]
    for s in stages[:2]:
        assert STAGE_TIME.match(s.start_time)
        assert STAGE_TIME.match(s.end_time)
    assert stages[2].start_time is None
    assert stages[2].end_time is None

    raw = tenant.raw(
        "POST", f"/v5/{tenant.project_id}/api/pipelines/status", json_body=[pipeline_id]
    ).json()
    third = raw[0]["stage_status_list"][2]
    assert set(third) == STAGE_STATUS_KEYS
    assert third["start_time"] is None
    assert third["end_time"] is None

    detail = tenant.client("viewer").show_pipeline_run_detail(
        ShowPipelineRunDetailRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    failing_step = detail.stages[1].jobs[0].steps[0]
    assert failing_step.status == "FAILED"
    log = tenant.client("viewer").show_pipeline_log(
        ShowPipelineLogRequest(
            project_id=tenant.project_id,
            pipeline_id=pipeline_id,
            pipeline_run_id=run_id,
            job_run_id=detail.stages[1].jobs[0].id,
            step_run_id=failing_step.id,
            body=LogQuery(limit=100, sort="asc"),
        )
    )
    assert "about to fail" in log.log


# -- stop ------------------------------------------------------------------------------------


def _sleepers(argument: str) -> list[int]:
    """PIDs of `sleep <argument>` processes (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(cmdline) >= 2 and cmdline[0].endswith(b"sleep") and cmdline[1] == argument.encode():
            found.append(int(entry.name))
    return found


def _eventually(check: Callable[[], bool], what: str, timeout: float = POLL_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def test_stopping_a_running_run_cancels_it_and_its_stages(tenant: Tenant) -> None:
    # A unique duration so that this test's sleep process can be told apart from any other.
    duration = f"300.{secrets.randbelow(10**6):06d}"
    pipeline_id = tenant.create_pipeline(
        definition(
            stage("LONG", shell_job("WAIT", f"echo waiting\nsleep {duration}"), name="Long"),
            stage("AFTER", shell_job("NEXT", "echo after"), name="After"),
        )
    )
    run_id = tenant.run(pipeline_id)
    running = tenant.wait_latest(
        pipeline_id,
        lambda i: i.pipeline_run_id == run_id and i.stage_status_list[0].status == "RUNNING",
    )
    assert running.status == "RUNNING"
    assert running.end_time is None
    track_process = Path("/proc/self").exists()
    if track_process:
        _eventually(lambda: bool(_sleepers(duration)), "the step's sleep process runs")

    stopped = tenant.client("developer").stop_pipeline_run(
        StopPipelineRunRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    assert stopped.success is True

    item = tenant.wait_run(pipeline_id, run_id, "CANCELED")
    assert item.status == "CANCELED"
    assert [s.status for s in item.stage_status_list] == ["CANCELED", "CANCELED"]
    assert isinstance(item.end_time, int)
    assert item.end_time >= item.start_time
    assert STAGE_TIME.match(item.stage_status_list[0].end_time)
    if track_process:
        _eventually(lambda: not _sleepers(duration), "the step's sleep process is killed")

    detail = tenant.client("viewer").show_pipeline_run_detail(
        ShowPipelineRunDetailRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    assert detail.status == "CANCELED"
    assert detail.stages[0].jobs[0].status == "CANCELED"
    assert detail.stages[0].jobs[0].steps[0].status == "CANCELED"

    # It has ended: nothing to stop. Sent by another user (another AK), since the developer's
    # identical request within the same second of X-Sdk-Date would be refused as a replay.
    with pytest.raises(ClientRequestException) as raised:
        tenant.client("admin").stop_pipeline_run(
            StopPipelineRunRequest(
                project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
            )
        )
    assert raised.value.status_code == 409
    assert raised.value.error_code == "DEVPIPE.00011409"


# -- run detail, logs, lists, pipeline detail ------------------------------------------------


@pytest.mark.parametrize("by", ["id", "number"])
def test_run_detail_by_id_and_by_number(tenant: Tenant, completed: Finished, by: str) -> None:
    request = ShowPipelineRunDetailRequest(
        project_id=tenant.project_id, pipeline_id=completed.pipeline_id
    )
    if by == "id":
        request.pipeline_run_id = completed.run_id
    else:
        request.pipeline_run_number = "1"
    detail = tenant.client("viewer").show_pipeline_run_detail(request)

    developer = tenant.accounts["developer"]
    assert detail.id == completed.run_id
    assert detail.pipeline_id == completed.pipeline_id
    assert detail.name == completed.name
    assert detail.run_number == 1
    assert detail.status == "COMPLETED"
    assert detail.trigger_type == "Manual"
    assert detail.executor_id == developer.user_id
    assert detail.executor_name == developer.display_name
    assert detail.start_time == completed.latest.start_time
    assert detail.end_time == completed.latest.end_time
    assert [s.name for s in detail.stages] == ["Build", "Test (unit)"]
    assert [s.identifier for s in detail.stages] == ["BUILD", "TEST"]
    assert [s.sequence for s in detail.stages] == [0, 1]
    for s in detail.stages:
        assert s.status == "COMPLETED"
        assert [j.status for j in s.jobs] == ["COMPLETED"]
        assert [step.status for step in s.jobs[0].steps] == ["COMPLETED"]
        assert s.jobs[0].steps[0].task == "official_shell_plugin"
    assert detail.detail_url == completed.latest.detail_url


def test_step_logs_show_the_echoed_lines(tenant: Tenant, completed: Finished) -> None:
    client = tenant.client("viewer")
    detail = client.show_pipeline_run_detail(
        ShowPipelineRunDetailRequest(
            project_id=tenant.project_id,
            pipeline_id=completed.pipeline_id,
            pipeline_run_id=completed.run_id,
        )
    )
    for run_stage, expected in zip(detail.stages, [BUILD_LINES, TEST_LINES], strict=True):
        job = run_stage.jobs[0]
        step = job.steps[0]
        log = client.show_pipeline_log(
            ShowPipelineLogRequest(
                project_id=tenant.project_id,
                pipeline_id=completed.pipeline_id,
                pipeline_run_id=completed.run_id,
                job_run_id=job.id,
                step_run_id=step.id,
                body=LogQuery(start_offset=0, end_offset=0, limit=500, sort="asc"),
            )
        )
        lines = log.log.splitlines()
        # the job's checkout of the code source comes first, in its first step's log
        assert lines[0] == "$ git init"
        assert lines[-len(expected) :] == expected
        assert log.step_run_id == step.id
        assert log.has_more is False
        assert log.start_offset == "0"
        assert log.end_offset == str(len(lines))


def test_list_runs_and_list_pipelines_show_the_latest_run(
    tenant: Tenant, completed: Finished
) -> None:
    client = tenant.client("viewer")
    runs = client.list_pipeline_runs(
        ListPipelineRunsRequest(
            project_id=tenant.project_id,
            pipeline_id=completed.pipeline_id,
            body=ListPipelineRunsQuery(offset=0, limit=10),
        )
    )
    assert runs.total == 1
    [run] = runs.pipeline_runs
    assert run.pipeline_run_id == completed.run_id
    assert run.status == "COMPLETED"
    assert run.build_params.target_branch == BRANCH
    assert all(ID.match(s.id) for s in run.stage_status_list)
    assert [s.name for s in run.stage_status_list] == ["Build", "Test (unit)"]

    listed = client.list_pipelines(
        ListPipelinesRequest(
            project_id=tenant.project_id, body=ListPipelineQuery(name=completed.name, limit=10)
        )
    )
    [pipeline] = [p for p in listed.pipelines if p.pipeline_id == completed.pipeline_id]
    assert pipeline.name == completed.name
    assert pipeline.latest_run.pipeline_run_id == completed.run_id
    assert pipeline.latest_run.status == "COMPLETED"


def test_show_pipeline_detail_returns_what_was_created(tenant: Tenant, completed: Finished) -> None:
    detail = tenant.client("viewer").show_pipeline_detail(
        ShowPipelineDetailRequest(project_id=tenant.project_id, pipeline_id=completed.pipeline_id)
    )
    assert detail.id == completed.pipeline_id
    assert detail.name == completed.name
    assert detail.project_id == tenant.project_id
    assert detail.is_publish is False
    assert detail.creator_id == tenant.accounts["admin"].user_id
    assert '"BUILD"' in detail.definition
    [source] = detail.sources
    assert source.type == "code"
    assert source.params.git_url == e2e_repo().file_url
    assert source.params.default_branch == BRANCH


# -- delete ----------------------------------------------------------------------------------


def test_a_deleted_pipeline_disappears_from_batch_status(
    tenant: Tenant, completed: Finished
) -> None:
    pipeline_id = tenant.create_pipeline(definition(stage("S", shell_job("J", "echo bye"))))
    run_id = tenant.run(pipeline_id)
    tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    both = [pipeline_id, completed.pipeline_id]
    assert [i.pipeline_id for i in tenant.latest(*both)] == both

    deleted = tenant.client("admin").delete_pipeline(
        DeletePipelineRequest(project_id=tenant.project_id, pipeline_id=pipeline_id)
    )
    assert deleted.pipeline_id == pipeline_id

    assert [i.pipeline_id for i in tenant.latest(*both)] == [completed.pipeline_id]
    with pytest.raises(ClientRequestException) as raised:
        tenant.client("viewer").show_pipeline_detail(
            ShowPipelineDetailRequest(project_id=tenant.project_id, pipeline_id=pipeline_id)
        )
    assert raised.value.status_code == 404
    assert raised.value.error_code == "DEVPIPE.00011401"


# -- errors ----------------------------------------------------------------------------------

ErrorCall = Callable[[Tenant, str], Any]


def _status(role: str, body: list[str], project_id: str | None = None) -> ErrorCall:
    def call(tenant: Tenant, _pipeline_id: str) -> Any:
        return tenant.client(role).batch_show_pipelines_latest_status(
            BatchShowPipelinesLatestStatusRequest(
                project_id=project_id or tenant.project_id, body=body
            )
        )

    return call


def _run_as(role: str, pipeline_id: str | None = None) -> ErrorCall:
    def call(tenant: Tenant, existing: str) -> Any:
        return tenant.client(role).run_pipeline(
            RunPipelineRequest(
                project_id=tenant.project_id,
                pipeline_id=pipeline_id or existing,
                body=RunPipelineDTO(),
            )
        )

    return call


def _signed_with(ak: Callable[[Tenant], str], sk: str) -> ErrorCall:
    def call(tenant: Tenant, pipeline_id: str) -> Any:
        client = sdk_client(tenant.base_url, ak(tenant), sk)
        return client.batch_show_pipelines_latest_status(
            BatchShowPipelinesLatestStatusRequest(project_id=tenant.project_id, body=[pipeline_id])
        )

    return call


def _show_pipeline(pipeline_id: str) -> ErrorCall:
    def call(tenant: Tenant, _existing: str) -> Any:
        return tenant.client("viewer").show_pipeline_detail(
            ShowPipelineDetailRequest(project_id=tenant.project_id, pipeline_id=pipeline_id)
        )

    return call


ERROR_CASES = {
    "malformed-id-400": (
        _status("viewer", ["not-a-pipeline-id"]),
        400,
        "DEVCP.00021400",
    ),
    "wrong-sk-401": (
        _signed_with(lambda t: t.accounts["outsider"].ak, "W" * 40),
        401,
        "APIGW.0301",
    ),
    "unknown-ak-401": (_signed_with(lambda t: "UNKNOWNAK0000000000X", "W" * 40), 401, "APIGW.0301"),
    "viewer-runs-403": (_run_as("viewer"), 403, "DEVCP.00014031"),
    "outsider-status-403": (_status("outsider", []), 403, "DEVCP.00014031"),
    "unknown-project-404": (_status("viewer", [], project_id=random_id()), 404, "DEVPIPE.00011412"),
    "unknown-pipeline-detail-404": (_show_pipeline(random_id()), 404, "DEVPIPE.00011401"),
    "unknown-pipeline-run-404": (_run_as("developer", random_id()), 404, "DEVPIPE.00011401"),
}


@pytest.mark.parametrize(
    ("call", "status_code", "error_code"), ERROR_CASES.values(), ids=ERROR_CASES.keys()
)
def test_errors_raise_client_request_exception(
    tenant: Tenant, completed: Finished, call: ErrorCall, status_code: int, error_code: str
) -> None:
    with pytest.raises(ClientRequestException) as raised:
        call(tenant, completed.pipeline_id)
    error = raised.value
    assert error.status_code == status_code
    assert error.error_code == error_code
    assert error.error_msg
    assert error.request_id
