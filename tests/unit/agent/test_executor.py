"""Tests for `stageline.agent.executor`: running a job's shell steps as real bash processes."""

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stageline.agent.executor import run_job
from stageline.schemas.jobs import JobAssignment, JobOutcome, StepAssignment

SHELL_TASK = "official_shell_plugin"
JOB_ID = "job-1"

Event = tuple[Any, ...]


@dataclass
class RecordingEvents:
    """A `JobEvents` that records every call, in order, from whichever thread makes it."""

    calls: list[Event] = field(default_factory=list)
    step_started_event: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    upload_refusal: str | None = None
    """What `upload_artifact` answers: None (stored) or why not."""

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def job_started(self, job_run_id: str) -> None:
        self._record("job_started", job_run_id)

    def step_started(self, job_run_id: str, step_run_id: str) -> None:
        self._record("step_started", job_run_id, step_run_id)
        self.step_started_event.set()

    def step_log(self, step_run_id: str, lines: Sequence[str]) -> None:
        self._record("step_log", step_run_id, tuple(lines))

    def step_outputs(self, step_run_id: str, outputs: Sequence[tuple[str, str]]) -> None:
        self._record("step_outputs", step_run_id, tuple(outputs))

    def upload_artifact(self, step_run_id: str, name: str, path: Path) -> str | None:
        self._record("upload_artifact", step_run_id, name, path.read_bytes())
        return self.upload_refusal

    def step_finished(
        self, step_run_id: str, outcome: JobOutcome, *, exit_code: int | None, message: str | None
    ) -> None:
        self._record("step_finished", step_run_id, outcome, exit_code, message)

    def job_finished(self, job_run_id: str, outcome: JobOutcome, message: str | None) -> None:
        self._record("job_finished", job_run_id, outcome, message)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.calls)

    def log_lines(self, step_run_id: str) -> list[str]:
        return [
            line
            for call in self.snapshot()
            if call[0] == "step_log" and call[1] == step_run_id
            for line in call[2]
        ]

    def log_batches(self, step_run_id: str) -> list[tuple[str, ...]]:
        return [
            call[2] for call in self.snapshot() if call[0] == "step_log" and call[1] == step_run_id
        ]

    def without_logs(self) -> list[Event]:
        return [call for call in self.snapshot() if call[0] != "step_log"]


def shell(step_run_id: str, script: str | None, name: str | None = None) -> StepAssignment:
    return StepAssignment(
        step_run_id=step_run_id,
        name=name or f"Step {step_run_id}",
        task=SHELL_TASK if script is not None else "official_devcloud_noop",
        script=script,
    )


def job(
    *steps: StepAssignment, env: dict[str, str] | None = None, secrets: tuple[str, ...] = ()
) -> JobAssignment:
    return JobAssignment(
        job_run_id=JOB_ID,
        run_id="run-1",
        pipeline_id="pipeline-1",
        name="Build",
        steps=steps,
        env=env or {},
        secrets=secrets,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


def run(assignment: JobAssignment, workspace: Path) -> RecordingEvents:
    events = RecordingEvents()
    run_job(assignment, events, workspace=workspace, cancelled=threading.Event())
    return events


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def process_group(pgid: int) -> set[int]:
    """The live processes whose process group is `pgid`, read from /proc."""
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            members.add(int(entry.name))
    return members


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


class TestRunJob:
    def test_two_steps_complete_with_events_in_order(self, workspace: Path) -> None:
        assignment = job(
            shell("s1", "echo one\necho two >&2\n"),
            shell("s2", "echo three\n"),
        )

        events = run(assignment, workspace)

        assert events.without_logs() == [
            ("job_started", JOB_ID),
            ("step_started", JOB_ID, "s1"),
            ("step_finished", "s1", "COMPLETED", 0, None),
            ("step_started", JOB_ID, "s2"),
            ("step_finished", "s2", "COMPLETED", 0, None),
            ("job_finished", JOB_ID, "COMPLETED", None),
        ]
        assert events.log_lines("s1") == ["one", "two"]
        assert events.log_lines("s2") == ["three"]

    def test_a_relative_workspace_path_works(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The default data directory is relative (`.stageline`): steps must still find their
        scripts once they run inside the workspace."""
        monkeypatch.chdir(tmp_path)

        events = run(job(shell("s1", "echo from $PWD")), Path(".stageline/workspaces/job"))

        assert events.without_logs()[-1] == ("job_finished", JOB_ID, "COMPLETED", None)
        assert events.log_lines("s1") == [f"from {tmp_path / '.stageline/workspaces/job'}"]

    def test_logs_of_a_step_arrive_between_its_start_and_finish(self, workspace: Path) -> None:
        events = run(job(shell("s1", "echo hi\n"), shell("s2", "echo there\n")), workspace)

        kinds = [
            (call[0], call[1] if call[0] != "step_started" else call[2])
            for call in events.snapshot()
        ]
        assert kinds == [
            ("job_started", JOB_ID),
            ("step_started", "s1"),
            ("step_log", "s1"),
            ("step_finished", "s1"),
            ("step_started", "s2"),
            ("step_log", "s2"),
            ("step_finished", "s2"),
            ("job_finished", JOB_ID),
        ]

    def test_failing_step_fails_the_job_and_stops_later_steps(self, workspace: Path) -> None:
        assignment = job(
            shell("s1", "echo before\nexit 3\necho after\n", name="Compile"),
            shell("s2", "echo never\n"),
        )

        events = run(assignment, workspace)

        calls = events.without_logs()
        assert calls[:2] == [("job_started", JOB_ID), ("step_started", JOB_ID, "s1")]
        _, step_id, outcome, exit_code, message = calls[2]
        assert (step_id, outcome, exit_code) == ("s1", "FAILED", 3)
        assert "Compile" in message
        assert "3" in message
        assert calls[3][:3] == ("job_finished", JOB_ID, "FAILED")
        assert len(calls) == 4
        assert events.log_lines("s1") == ["before"]
        assert events.log_lines("s2") == []

    def test_failing_command_stops_the_script_under_bash_e(self, workspace: Path) -> None:
        events = run(job(shell("s1", "echo start\nfalse\necho unreachable\n")), workspace)

        assert events.log_lines("s1") == ["start"]
        assert events.without_logs()[2] == (
            "step_finished",
            "s1",
            "FAILED",
            1,
            "step 'Step s1' exited with code 1",
        )

    def test_step_without_script_completes_without_a_process(self, workspace: Path) -> None:
        events = run(job(shell("s1", None), shell("s2", "echo done\n")), workspace)

        assert events.without_logs() == [
            ("job_started", JOB_ID),
            ("step_started", JOB_ID, "s1"),
            ("step_finished", "s1", "COMPLETED", None, None),
            ("step_started", JOB_ID, "s2"),
            ("step_finished", "s2", "COMPLETED", 0, None),
            ("job_finished", JOB_ID, "COMPLETED", None),
        ]
        assert events.log_lines("s1") == []
        assert events.log_lines("s2") == ["done"]

    def test_workspace_is_removed_after_the_job(self, workspace: Path) -> None:
        events = run(job(shell("s1", "echo data > file.txt\npwd\n")), workspace)

        assert events.log_lines("s1") == [str(workspace)]
        assert not workspace.exists()

    def test_workspace_is_removed_after_a_failed_job(self, workspace: Path) -> None:
        run(job(shell("s1", "touch left-behind\nexit 1\n")), workspace)

        assert not workspace.exists()

    def test_long_output_arrives_complete_and_in_order_across_batches(
        self, workspace: Path
    ) -> None:
        # The pause lets the executor flush the first half before the step ends.
        script = "seq 1 2500\nsleep 1\nseq 2501 5000\n"

        events = run(job(shell("s1", script)), workspace)

        assert events.log_lines("s1") == [str(n) for n in range(1, 5001)]
        assert len(events.log_batches("s1")) >= 2
        assert events.without_logs()[-1] == ("job_finished", JOB_ID, "COMPLETED", None)


class TestStepEnvironment:
    def test_job_env_workspace_and_step_name_are_visible(self, workspace: Path) -> None:
        script = (
            'echo "greeting=$GREETING"\n'
            'echo "workspace=$WORKSPACE"\n'
            'echo "step=$STEP_NAME"\n'
            'echo "step_run=$STEP_RUN_ID"\n'
        )

        events = run(
            job(shell("s1", script, name="Say hi"), env={"GREETING": "hello world"}), workspace
        )

        assert events.log_lines("s1") == [
            "greeting=hello world",
            f"workspace={workspace}",
            "step=Say hi",
            "step_run=s1",
        ]

    def test_server_environment_does_not_leak_into_steps(
        self, workspace: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("STAGELINE_SECRET_KEY", "x")
        monkeypatch.setenv("STAGELINE_DATABASE_URL", "postgresql://user:pw@db/stageline")

        script = (
            'echo "secret=${STAGELINE_SECRET_KEY-unset}"\n'
            'echo "database=${STAGELINE_DATABASE_URL-unset}"\n'
        )
        events = run(job(shell("s1", script)), workspace)

        assert events.log_lines("s1") == ["secret=unset", "database=unset"]

    def test_path_is_inherited(self, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/stageline-test/bin")

        events = run(job(shell("s1", 'echo "$PATH"\n')), workspace)

        assert events.log_lines("s1") == ["/usr/local/bin:/usr/bin:/bin:/opt/stageline-test/bin"]

    def test_job_env_overrides_inherited_variables(self, workspace: Path) -> None:
        events = run(job(shell("s1", 'echo "$TZ"\n'), env={"TZ": "Asia/Shanghai"}), workspace)

        assert events.log_lines("s1") == ["Asia/Shanghai"]


class TestSecretMasking:
    @pytest.mark.parametrize(
        ("secrets", "script", "expected"),
        [
            (("s3cr3t",), 'echo "token=$TOKEN"\n', ["token=***"]),
            (("s3cr3t",), 'echo "$TOKEN and $TOKEN" >&2\n', ["*** and ***"]),
            (("abc", "abcdef"), "echo abcdef-abc\n", ["***-***"]),
            (("", "s3cr3t"), "echo plain\n", ["plain"]),
            ((), "echo s3cr3t\n", ["s3cr3t"]),
        ],
        ids=["stdout", "stderr twice", "longest first", "empty secret ignored", "no secrets"],
    )
    def test_secrets_are_replaced_in_log_lines(
        self, workspace: Path, secrets: tuple[str, ...], script: str, expected: list[str]
    ) -> None:
        assignment = job(shell("s1", script), env={"TOKEN": "s3cr3t"}, secrets=secrets)

        events = run(assignment, workspace)

        assert events.log_lines("s1") == expected

    def test_a_secret_is_masked_in_output_keys_as_well_as_values(self, workspace: Path) -> None:
        script = (
            'echo "$TOKEN=used as a key" >> "$STAGELINE_OUTPUTS"\n'
            'echo "prefix-$TOKEN=again" >> "$STAGELINE_OUTPUTS"\n'
            'echo "plain=$TOKEN" >> "$STAGELINE_OUTPUTS"\n'
        )
        assignment = job(shell("s1", script), env={"TOKEN": "s3cr3t"}, secrets=("s3cr3t",))

        events = run(assignment, workspace)

        outputs = [call for call in events.snapshot() if call[0] == "step_outputs"]
        assert outputs == [
            (
                "step_outputs",
                "s1",
                (("***", "used as a key"), ("prefix-***", "again"), ("plain", "***")),
            )
        ]


class TestCancel:
    def test_cancel_kills_the_step_and_everything_it_started(self, workspace: Path) -> None:
        script = 'sleep 300 &\necho "$$ $!" > pids.tmp\nmv pids.tmp pids\nsleep 300\n'
        events = RecordingEvents()
        cancelled = threading.Event()
        worker = threading.Thread(
            target=run_job,
            args=(job(shell("s1", script), shell("s2", "echo never\n")), events),
            kwargs={"workspace": workspace, "cancelled": cancelled},
            daemon=True,
        )
        worker.start()
        try:
            assert events.step_started_event.wait(timeout=10)
            pid_file = workspace / "pids"
            assert wait_until(pid_file.exists, timeout=10)
            shell_pid, background_pid = (int(pid) for pid in pid_file.read_text().split())
            # The step's shell leads its own group: itself, the background and foreground sleeps.
            assert wait_until(lambda: len(process_group(shell_pid)) >= 3, timeout=10)
            pids = process_group(shell_pid)
            assert {shell_pid, background_pid} <= pids
        finally:
            cancelled.set()
        worker.join(timeout=15)

        assert not worker.is_alive()
        calls = events.without_logs()
        assert calls[-1] == ("job_finished", JOB_ID, "CANCELED", "canceled")
        assert calls[-2][:3] == ("step_finished", "s1", "CANCELED")
        assert ("step_started", JOB_ID, "s2") not in calls
        # Orphaned children are reaped by init, which may take a moment.
        assert wait_until(lambda: all(process_gone(pid) for pid in pids), timeout=10), sorted(
            pid for pid in pids if not process_gone(pid)
        )
        assert not workspace.exists()

    def test_cancel_before_start_runs_no_steps(self, workspace: Path) -> None:
        events = RecordingEvents()
        cancelled = threading.Event()
        cancelled.set()

        run_job(job(shell("s1", "echo never\n")), events, workspace=workspace, cancelled=cancelled)

        assert events.snapshot() == [
            ("job_started", JOB_ID),
            ("job_finished", JOB_ID, "CANCELED", "canceled"),
        ]
        assert not workspace.exists()
