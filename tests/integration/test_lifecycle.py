"""The run lifecycle by real behaviour: real bash steps on the real agent decide every status.

Each test makes the statuses happen (a step fails, waits on a file the test controls, outlives
its timeout, ...) and reads them in batch status while they hold, plus run detail for jobs.
Steps that must wait block on a `Gate` file instead of sleeping, so no assertion depends on
timing; every wait, in the test and in the scripts, is bounded.
"""

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.factories import World, definition, shell_job, stage

T = TypeVar("T")

WAIT_SECONDS = 20.0
"""Bound of every poll in these tests; far above what each step needs."""
SCRIPT_WAIT_SECONDS = 30
"""Bound of a step's wait on a gate: a step never hangs an agent slot for longer."""


class Gate:
    """A file a step waits for: the test (or another step) opens the gate by creating it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        self.path.touch()

    def wait(self) -> str:
        """Shell lines that block until the gate is open; the step fails if it never opens."""
        tries = SCRIPT_WAIT_SECONDS * 20
        return (
            f'for _ in $(seq {tries}); do [ -e "{self.path}" ] && break; sleep 0.05; done\n'
            f'[ -e "{self.path}" ]'
        )

    def opened(self) -> bool:
        return self.path.exists()


@pytest.fixture
def gates(tmp_path: Path) -> Iterator[Callable[[str], Gate]]:
    """Make gates in a fresh directory; all are opened at the end so no step is left waiting."""
    made: list[Gate] = []

    def make(name: str) -> Gate:
        gate = Gate(tmp_path / name)
        made.append(gate)
        return gate

    yield make
    for gate in made:
        gate.open()


def eventually(read: Callable[[], T], holds: Callable[[T], bool], what: str) -> T:
    """Read until `holds` is true of the value, within WAIT_SECONDS; return that value."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = read()
        if holds(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never held; last seen: {json.dumps(value)[:3000]}")
        time.sleep(0.05)


def latest(world: World, pipeline_id: str) -> dict[str, Any] | None:
    """The pipeline's element of batch status, or None before its first run."""
    items = world.status(pipeline_id)
    assert len(items) <= 1, items
    return items[0] if items else None


def summary(item: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    if item is None:
        return None
    return item["status"], [s["status"] for s in item["stage_status_list"]]


def batch_status_shows(
    world: World, pipeline_id: str, run_id: str, status: str, stages: list[str]
) -> dict[str, Any]:
    """Poll batch status until run `run_id` is the latest and shows `status` and `stages`."""
    wanted = (status, stages)

    def holds(item: dict[str, Any] | None) -> bool:
        return item is not None and item["pipeline_run_id"] == run_id and summary(item) == wanted

    item = eventually(lambda: latest(world, pipeline_id), holds, f"batch status {wanted}")
    assert item is not None
    return item


def job_of(detail: dict[str, Any], identifier: str) -> dict[str, Any]:
    for stage_item in detail["stages"]:
        for job in stage_item["jobs"]:
            if job["identifier"] == identifier:
                found: dict[str, Any] = job
                return found
    raise AssertionError(f"no job {identifier} in run {detail['id']}")


def job_reaches(
    world: World, pipeline_id: str, run_id: str, identifier: str, status: str
) -> dict[str, Any]:
    """Poll run detail until job `identifier` shows `status`; return the detail."""
    return eventually(
        lambda: world.detail(pipeline_id, run_id),
        lambda detail: job_of(detail, identifier)["status"] == status,
        f"job {identifier} {status}",
    )


def runs_url(world: World, pipeline_id: str, run_id: str) -> str:
    return f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}"


class TestConditions:
    def test_a_default_condition_skips_the_job_after_its_dependency_failed(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("BAD", "exit 3"),
                    shell_job("AFTER", "echo after", depends_on=["BAD"]),
                )
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        after = job_of(detail, "AFTER")
        assert (detail["status"], after["status"]) == ("FAILED", "SKIPPED")
        assert after["message"].startswith("condition not met")
        assert (after["start_time"], after["steps"][0]["status"]) == (None, "SKIPPED")
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED"])

    def test_an_always_job_runs_after_its_dependency_failed(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("BAD", "exit 3"),
                    shell_job(
                        "REPORT",
                        'echo "reporting"',
                        depends_on=["BAD"],
                        condition="${{ always() }}",
                    ),
                )
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        report = job_of(detail, "REPORT")
        assert (job_of(detail, "BAD")["status"], report["status"]) == ("FAILED", "COMPLETED")
        assert report["steps"][0]["status"] == "COMPLETED"
        assert report["start_time"] >= job_of(detail, "BAD")["end_time"]
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED"])

    def test_a_failure_job_runs_only_when_a_dependency_failed(self, world: World) -> None:
        def pipeline(first_script: str) -> str:
            return world.create_pipeline(
                definition(
                    stage(
                        "S",
                        shell_job("FIRST", first_script),
                        shell_job(
                            "ON_FAILURE",
                            "echo notify",
                            depends_on=["FIRST"],
                            condition="${{ failure() }}",
                        ),
                    )
                )
            )

        failing, passing = pipeline("exit 1"), pipeline("true")
        failing_run, passing_run = world.run(failing), world.run(passing)

        detail = world.wait_for(failing, failing_run)
        assert [j["status"] for j in detail["stages"][0]["jobs"]] == ["FAILED", "COMPLETED"]
        batch_status_shows(world, failing, failing_run, "FAILED", ["FAILED"])

        detail = world.wait_for(passing, passing_run)
        on_failure = job_of(detail, "ON_FAILURE")
        assert [j["status"] for j in detail["stages"][0]["jobs"]] == ["COMPLETED", "SKIPPED"]
        assert on_failure["message"] == "condition not met: ${{ failure() }}"
        assert on_failure["start_time"] is None
        batch_status_shows(world, passing, passing_run, "COMPLETED", ["COMPLETED"])

    def test_a_runtime_variable_comparison_decides_each_run(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("BUILD", shell_job("COMPILE", 'echo "building for $env"')),
                stage(
                    "DEPLOY",
                    shell_job(
                        "SHIP",
                        '[ "$env" = prod ]',
                        condition="${{ variables.env == 'prod' }}",
                    ),
                ),
            ),
            variables=[
                {
                    "name": "env",
                    "value": "dev",
                    "is_runtime": True,
                    "type": "string",
                    "description": "target environment",
                }
            ],
        )

        prod = world.run(pipeline_id, {"variables": [{"name": "env", "value": "prod"}]})
        detail = world.wait_for(pipeline_id, prod)
        assert job_of(detail, "SHIP")["status"] == "COMPLETED"
        batch_status_shows(world, pipeline_id, prod, "COMPLETED", ["COMPLETED", "COMPLETED"])

        dev = world.run(pipeline_id, {"variables": [{"name": "env", "value": "dev"}]})
        detail = world.wait_for(pipeline_id, dev)
        ship = job_of(detail, "SHIP")
        assert ship["status"] == "SKIPPED"
        assert ship["message"] == "condition not met: ${{ variables.env == 'prod' }}"
        item = batch_status_shows(world, pipeline_id, dev, "COMPLETED", ["COMPLETED", "SKIPPED"])
        assert item["run_number"] == 2

    def test_an_invalid_condition_is_refused_at_create_naming_the_field(self, world: World) -> None:
        body = {
            "name": "bad-condition",
            "is_publish": False,
            "definition": definition(
                stage(
                    "S",
                    shell_job("A", "true"),
                    shell_job("B", "true", condition="${{ variables.env = 'prod' }}"),
                )
            ),
        }
        response = world.client.post(
            f"{world.base}/pipelines", json=body, headers=world.admin.headers
        )
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["error_code"] == "DEVCP.00021400"
        assert error["error_msg"].startswith("definition.stages[0].jobs[1].condition:")
        assert "'=='" in error["error_msg"]


class TestAsyncJobs:
    def test_an_async_job_runs_on_while_the_run_moves_on_and_its_failure_does_not_fail_it(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        release = gates("release-async")
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "SCAN",
                    shell_job(
                        "SCANNER",
                        f"{release.wait()}\necho scan failed\nexit 1",
                        **{"async": "true"},
                    ),
                ),
                stage("NEXT", shell_job("PACKAGE", "echo packaged")),
            )
        )
        run_id = world.run(pipeline_id)

        item = batch_status_shows(
            world, pipeline_id, run_id, "RUNNING", ["ASYNC_RUNNING", "COMPLETED"]
        )
        assert item["end_time"] is None
        detail = world.detail(pipeline_id, run_id)
        assert job_of(detail, "SCANNER")["status"] == "ASYNC_RUNNING"
        assert job_of(detail, "PACKAGE")["status"] == "COMPLETED"
        assert not release.opened()  # the next stage did not wait for the async job

        release.open()
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        scanner = job_of(detail, "SCANNER")
        assert scanner["status"] == "ASYNC_FAILED"
        assert "exited with code 1" in scanner["message"]
        item = batch_status_shows(
            world, pipeline_id, run_id, "COMPLETED", ["ASYNC_FAILED", "COMPLETED"]
        )
        assert item["end_time"] is not None


QUEUE_ONE = {"concurrency_number": 1, "exceed_action": "QUEUE", "enable": True}
ABORT_ONE = {"concurrency_number": 1, "exceed_action": "ABORT", "enable": True}


def start_held_run(world: World, release: Gate, control: dict[str, Any]) -> tuple[str, str]:
    """A two-stage pipeline under `control` whose first run holds its first job until
    `release` opens; (pipeline_id, run_id) once that job runs."""
    pipeline_id = world.create_pipeline(
        definition(
            stage("A", shell_job("HOLD", release.wait())),
            stage("B", shell_job("AFTER", "true")),
        ),
        concurrency_control=control,
    )
    first = world.run(pipeline_id)
    job_reaches(world, pipeline_id, first, "HOLD", "RUNNING")
    return pipeline_id, first


class TestConcurrencyControl:
    def test_a_run_over_the_limit_is_suspended_until_a_slot_frees(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        release = gates("release-first")
        pipeline_id, first = start_held_run(world, release, QUEUE_ONE)
        second = world.run(pipeline_id)

        item = batch_status_shows(world, pipeline_id, second, "SUSPEND", ["SUSPEND", "SUSPEND"])
        assert item["run_number"] == 2
        detail = world.detail(pipeline_id, second)
        assert detail["status"] == "SUSPEND"
        assert {j["status"] for s in detail["stages"] for j in s["jobs"]} == {"SUSPEND"}
        assert world.detail(pipeline_id, first)["status"] == "RUNNING"

        release.open()
        first_detail = world.wait_for(pipeline_id, first)
        second_detail = world.wait_for(pipeline_id, second)
        assert (first_detail["status"], second_detail["status"]) == ("COMPLETED", "COMPLETED")
        assert job_of(second_detail, "HOLD")["start_time"] >= first_detail["end_time"]
        item = batch_status_shows(
            world, pipeline_id, second, "COMPLETED", ["COMPLETED", "COMPLETED"]
        )
        assert item["run_number"] == 2

    def test_a_run_over_the_limit_is_ignored_and_refused_with_abort(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        release = gates("release-first")
        pipeline_id, first = start_held_run(world, release, ABORT_ONE)

        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run", headers=world.developer.headers
        )
        assert response.status_code == 409, response.text
        error = response.json()
        assert error["error_code"] == "DEVPIPE.00011169"
        assert set(error["error"]) == {"pipeline_run_id", "queue_id"}
        ignored = error["error"]["pipeline_run_id"]
        assert ignored not in (None, "", first)

        detail = world.detail(pipeline_id, ignored)
        assert (detail["status"], detail["run_number"]) == ("IGNORED", 2)
        assert [s["status"] for s in detail["stages"]] == ["IGNORED", "IGNORED"]
        item = batch_status_shows(world, pipeline_id, ignored, "IGNORED", ["IGNORED", "IGNORED"])
        assert item["run_number"] == 2
        assert world.detail(pipeline_id, first)["status"] == "RUNNING"

        release.open()
        assert world.wait_for(pipeline_id, first)["status"] == "COMPLETED"
        assert world.detail(pipeline_id, ignored)["status"] == "IGNORED"  # never started later


class TestStageGraph:
    def test_a_run_always_stage_runs_after_a_failed_stage(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("A", shell_job("BREAK", "exit 2")),
                stage("B", shell_job("NEVER", "echo never")),
                {**stage("C", shell_job("TIDY", "echo tidy")), "run_always": True},
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        assert [s["status"] for s in detail["stages"]] == ["FAILED", "INIT", "COMPLETED"]
        assert job_of(detail, "NEVER")["start_time"] is None
        assert job_of(detail, "TIDY")["steps"][0]["status"] == "COMPLETED"
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED", "INIT", "COMPLETED"])

    def test_a_stage_depending_only_on_an_earlier_stage_runs_beside_the_one_between(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        release = gates("release-y")
        pipeline_id = world.create_pipeline(
            definition(
                stage("X", shell_job("X1", "true")),
                stage("Y", shell_job("Y1", release.wait())),
                {**stage("Z", shell_job("Z1", "true")), "depends_on": ["X"]},
            )
        )
        run_id = world.run(pipeline_id)
        batch_status_shows(
            world, pipeline_id, run_id, "RUNNING", ["COMPLETED", "RUNNING", "COMPLETED"]
        )
        assert not release.opened()  # Z finished while Y still waited

        release.open()
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        batch_status_shows(
            world, pipeline_id, run_id, "COMPLETED", ["COMPLETED", "COMPLETED", "COMPLETED"]
        )


class TestParallelJobs:
    def test_the_jobs_of_a_stage_run_at_the_same_time(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        left, right = gates("left-started"), gates("right-started")
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    # Each waits for the other's marker: run one after the other, both would fail.
                    shell_job("LEFT", f'touch "{left.path}"\n{right.wait()}'),
                    shell_job("RIGHT", f'touch "{right.path}"\n{left.wait()}'),
                )
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert [j["status"] for j in detail["stages"][0]["jobs"]] == ["COMPLETED", "COMPLETED"]
        batch_status_shows(world, pipeline_id, run_id, "COMPLETED", ["COMPLETED"])


class TestJobTimeout:
    def test_a_job_past_its_timeout_fails_and_its_process_is_killed(
        self, world: World, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleeper.pid"
        script = f'echo $$ > "{pid_file}.tmp"\nmv "{pid_file}.tmp" "{pid_file}"\nexec sleep 120'
        pipeline_id = world.create_pipeline(
            definition(
                stage("S", shell_job("SLEEPER", script, timeout="2s")),
                stage("T", shell_job("NEXT", "true")),
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        sleeper = job_of(detail, "SLEEPER")
        assert (detail["status"], sleeper["status"]) == ("FAILED", "FAILED")
        assert sleeper["message"] == "timed out after 2s"
        assert sleeper["end_time"] - sleeper["start_time"] >= 2000
        assert job_of(detail, "NEXT")["status"] == "INIT"
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED", "INIT"])

        pid = int(pid_file.read_text())
        eventually(
            lambda: Path(f"/proc/{pid}").exists(),
            lambda alive: not alive,
            f"the timed-out step's process {pid} is gone",
        )


class TestRetry:
    def test_a_retry_reruns_the_failed_job_in_the_same_run(
        self, world: World, tmp_path: Path
    ) -> None:
        marker = tmp_path / "attempted"
        flaky = f'if [ -e "{marker}" ]; then echo second try; else touch "{marker}"; exit 1; fi'
        pipeline_id = world.create_pipeline(
            definition(
                stage("BUILD", shell_job("OK", "true"), shell_job("FLAKY", flaky)),
                stage("TEST", shell_job("CHECK", "true")),
            )
        )
        run_id = world.run(pipeline_id)
        failed = world.wait_for(pipeline_id, run_id)
        assert failed["status"] == "FAILED"
        assert job_of(failed, "FLAKY")["status"] == "FAILED"
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED", "INIT"])

        response = world.client.put(
            f"{runs_url(world, pipeline_id, run_id)}/retry",
            json={},
            headers=world.developer.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}

        detail = world.wait_for(pipeline_id, run_id)
        assert (detail["id"], detail["run_number"], detail["status"]) == (run_id, 1, "COMPLETED")
        assert [job_of(detail, j)["status"] for j in ("OK", "FLAKY", "CHECK")] == ["COMPLETED"] * 3
        assert job_of(detail, "OK")["end_time"] == job_of(failed, "OK")["end_time"]  # not rerun
        item = batch_status_shows(world, pipeline_id, run_id, "COMPLETED", ["COMPLETED"] * 2)
        assert item["run_number"] == 1
        listed = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/list",
            json={},
            headers=world.viewer.headers,
        ).json()
        assert listed["total"] == 1

    def test_retrying_a_completed_run_is_a_409(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        response = world.client.put(
            f"{runs_url(world, pipeline_id, run_id)}/retry", headers=world.developer.headers
        )
        assert response.status_code == 409, response.text
        assert "COMPLETED" in response.json()["error_msg"]
        batch_status_shows(world, pipeline_id, run_id, "COMPLETED", ["COMPLETED"])

    def failed_run(self, world: World) -> tuple[str, str, dict[str, Any]]:
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("GOOD", "true"), shell_job("BAD", "exit 1")))
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        return pipeline_id, run_id, detail

    def test_retrying_a_job_that_did_not_fail_is_a_400(self, world: World) -> None:
        pipeline_id, run_id, detail = self.failed_run(world)
        response = world.client.put(
            f"{runs_url(world, pipeline_id, run_id)}/retry",
            json={"job_run_ids": [job_of(detail, "GOOD")["id"]]},
            headers=world.developer.headers,
        )
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["error_code"] == "DEVCP.00021400"
        assert error["error_msg"].startswith("job_run_ids[0]:")
        batch_status_shows(world, pipeline_id, run_id, "FAILED", ["FAILED"])

    def test_retrying_an_unknown_job_is_a_404(self, world: World) -> None:
        pipeline_id, run_id, _ = self.failed_run(world)
        response = world.client.put(
            f"{runs_url(world, pipeline_id, run_id)}/retry",
            json={"job_run_ids": ["0" * 32]},
            headers=world.developer.headers,
        )
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "DEVCP.00012002"
        assert world.detail(pipeline_id, run_id)["status"] == "FAILED"


class TestStop:
    def test_stopping_runs_the_cancelled_cleanup_job_and_cancels_the_rest(
        self, world: World, gates: Callable[[str], Gate]
    ) -> None:
        started, cleanup_started, release_cleanup = (
            gates("work-started"),
            gates("cleanup-started"),
            gates("release-cleanup"),
        )
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("WORK", f'touch "{started.path}"\nexec sleep 120'),
                    shell_job(
                        "CLEANUP",
                        f'touch "{cleanup_started.path}"\n{release_cleanup.wait()}',
                        depends_on=["WORK"],
                        condition="${{ cancelled() }}",
                    ),
                    shell_job("NEXT", "true", depends_on=["WORK"], condition="${{ default() }}"),
                ),
                stage("LATER", shell_job("NEVER", "true")),
            )
        )
        run_id = world.run(pipeline_id)
        eventually(started.opened, bool, "the WORK step started")
        job_reaches(world, pipeline_id, run_id, "WORK", "RUNNING")

        response = world.client.post(
            f"{runs_url(world, pipeline_id, run_id)}/stop", headers=world.developer.headers
        )
        assert response.status_code == 200, response.text

        # The clean-up job runs after the stop; until it ends the run is not over.
        eventually(cleanup_started.opened, bool, "the CLEANUP step started")
        detail = job_reaches(world, pipeline_id, run_id, "CLEANUP", "RUNNING")
        assert job_of(detail, "WORK")["status"] == "CANCELED"
        batch_status_shows(world, pipeline_id, run_id, "RUNNING", ["RUNNING", "CANCELED"])

        release_cleanup.open()
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "CANCELED"
        statuses = {j: job_of(detail, j)["status"] for j in ("WORK", "CLEANUP", "NEXT", "NEVER")}
        assert statuses == {
            "WORK": "CANCELED",
            "CLEANUP": "COMPLETED",
            "NEXT": "CANCELED",
            "NEVER": "CANCELED",
        }
        assert job_of(detail, "NEXT")["start_time"] is None
        batch_status_shows(world, pipeline_id, run_id, "CANCELED", ["CANCELED", "CANCELED"])
