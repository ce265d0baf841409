"""`stageline serve --workers 2`: API workers and a separate executor process share the work."""

import secrets
import time
from pathlib import Path

import httpx
from huaweicloudsdkcodeartspipeline.v2 import StopPipelineRunRequest

from tests.e2e.conftest import Tenant
from tests.factories import definition, shell_job, stage


def test_runs_started_on_any_worker_execute_and_complete(workers_tenant: Tenant) -> None:
    pipeline_id = workers_tenant.create_pipeline(
        definition(stage("A", shell_job("J", "echo a")), stage("B", shell_job("K", "echo b")))
    )
    run_ids = [workers_tenant.run(pipeline_id) for _ in range(4)]
    for run_id in run_ids[-1:]:
        item = workers_tenant.wait_run(pipeline_id, run_id, "COMPLETED")
        assert item.run_number == 4
        assert [s.status for s in item.stage_status_list] == ["COMPLETED", "COMPLETED"]


def test_a_stop_on_a_worker_kills_the_step_in_the_executor_process(
    workers_tenant: Tenant,
) -> None:
    marker = f"stageline-e2e-{secrets.token_hex(4)}"
    pipeline_id = workers_tenant.create_pipeline(
        definition(stage("S", shell_job("LONG", f"exec -a {marker} sleep 300")))
    )
    run_id = workers_tenant.run(pipeline_id)
    workers_tenant.wait_latest(
        pipeline_id, lambda item: item.stage_status_list[0].status == "RUNNING"
    )
    assert wait_for_processes(marker, present=True)
    workers_tenant.client("developer").stop_pipeline_run(
        StopPipelineRunRequest(
            project_id=workers_tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    item = workers_tenant.wait_run(pipeline_id, run_id, "CANCELED")
    assert [s.status for s in item.stage_status_list] == ["CANCELED"]
    assert wait_for_processes(marker, present=False)


def wait_for_processes(marker: str, *, present: bool, timeout: float = 15) -> bool:
    """Whether a process whose command line starts with `marker` is `present` within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                found = found or cmdline.read_bytes().startswith(marker.encode())
            except OSError:
                continue
        if found == present:
            return True
        time.sleep(0.1)
    return False


def test_a_change_made_through_one_worker_is_in_the_next_answer_of_every_worker(
    workers_tenant: Tenant,
) -> None:
    """Strict freshness: every request below opens its own connection, so the two API worker
    processes answer them in turn; each keeps its own cache of rendered elements, and both must
    show the stop in the very next answer after it returned."""
    pipeline_id = workers_tenant.create_pipeline(
        definition(stage("S", shell_job("LONG", "sleep 300")))
    )
    run_id = workers_tenant.run(pipeline_id)
    workers_tenant.wait_latest(
        pipeline_id, lambda item: item.stage_status_list[0].status == "RUNNING"
    )
    status_path = f"/v5/{workers_tenant.project_id}/api/pipelines/status"

    def statuses() -> list[str]:
        answers = [
            workers_tenant.raw("POST", status_path, role="viewer", json_body=[pipeline_id])
            for _ in range(16)
        ]
        return [answer.json()[0]["status"] for answer in answers]

    assert set(statuses()) == {"RUNNING"}  # both workers now hold the RUNNING element
    stopped = workers_tenant.raw(
        "POST",
        f"/v5/{workers_tenant.project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
        role="developer",
    )
    assert stopped.status_code == 200, stopped.text
    assert set(statuses()) == {"CANCELED"}


def test_request_ids_are_distinct_across_the_workers(workers_tenant: Tenant) -> None:
    # Each request on a connection of its own, so that both workers answer some of them.
    url = f"{workers_tenant.base_url}/health"
    responses = [httpx.get(url, trust_env=False) for _ in range(40)]
    ids = [response.headers["X-Request-Id"] for response in responses]
    assert len(set(ids)) == len(ids)
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)
