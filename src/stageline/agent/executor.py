"""Run one job's steps in order as `bash -e` subprocesses, streaming their output as log lines.

Each step runs in its own process group so that cancelling kills everything it started.
"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from stageline.schemas.jobs import JobAssignment, JobEvents, JobOutcome, StepAssignment

log = logging.getLogger(__name__)

INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "SHELL", "TMPDIR")
"""The only variables of the executor's own environment a step sees; no server secrets leak."""
LOG_FLUSH_SECONDS = 0.2
MAX_LINE_CHARS = 65_536
KILL_GRACE_SECONDS = 5.0
MASK = "***"


def step_environment(job: JobAssignment, workspace: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(job.env)
    env["WORKSPACE"] = str(workspace)
    return env


def masker(secrets: tuple[str, ...]) -> Callable[[str], str]:
    values = sorted((s for s in secrets if s), key=len, reverse=True)

    def mask(line: str) -> str:
        for value in values:
            line = line.replace(value, MASK)
        return line

    return mask


class _LineBuffer:
    """Lines read by a reader thread, handed to the step's log in batches."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._mask = mask

    def read_from(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + " [line truncated]"
            with self._lock:
                self._lines.append(self._mask(text))
        stream.close()

    def take(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


def _kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def run_step(
    step: StepAssignment,
    *,
    script: str,
    env: Mapping[str, str],
    workspace: Path,
    events: JobEvents,
    cancelled: threading.Event,
    mask: Callable[[str], str],
) -> tuple[JobOutcome, int | None, str | None]:
    """Run one shell step to its end or until `cancelled`; (outcome, exit code, message)."""
    script_path = workspace / ".stageline" / f"{step.step_run_id}.sh"
    script_path.parent.mkdir(parents=True, exist_ok=True)
    script_path.write_text(script)
    process = subprocess.Popen(
        ["bash", "-e", str(script_path)],
        cwd=workspace,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    buffer = _LineBuffer(mask)
    reader = threading.Thread(target=buffer.read_from, args=(process.stdout,), daemon=True)
    reader.start()
    killed_at: float | None = None
    while True:
        try:
            exit_code: int | None = process.wait(timeout=LOG_FLUSH_SECONDS)
        except subprocess.TimeoutExpired:
            exit_code = None
        if exit_code is not None:
            break
        if cancelled.is_set():
            if killed_at is None:
                killed_at = time.monotonic()
                _kill_group(process, signal.SIGTERM)
            elif time.monotonic() - killed_at > KILL_GRACE_SECONDS:
                _kill_group(process, signal.SIGKILL)
        if lines := buffer.take():
            events.step_log(step.step_run_id, lines)
    # Children that outlived the script still hold the pipe open; they belong to the step.
    _kill_group(process, signal.SIGKILL)
    reader.join(timeout=KILL_GRACE_SECONDS)
    if lines := buffer.take():
        events.step_log(step.step_run_id, lines)
    if cancelled.is_set():
        return "CANCELED", exit_code, "canceled"
    if exit_code != 0:
        return "FAILED", exit_code, f"step '{step.name}' exited with code {exit_code}"
    return "COMPLETED", 0, None


def run_job(
    job: JobAssignment, events: JobEvents, *, workspace: Path, cancelled: threading.Event
) -> None:
    """Run the job's steps in order; the first that does not complete ends the job."""
    events.job_started(job.job_run_id)
    workspace = workspace.resolve()  # steps run inside it: a relative path would not resolve
    workspace.mkdir(parents=True, exist_ok=True)
    env = step_environment(job, workspace)
    mask = masker(job.secrets)
    outcome: JobOutcome = "COMPLETED"
    message: str | None = None
    try:
        for step in job.steps:
            if cancelled.is_set():
                outcome, message = "CANCELED", "canceled"
                break
            events.step_started(job.job_run_id, step.step_run_id)
            if step.script is None:
                events.step_finished(step.step_run_id, "COMPLETED", exit_code=None, message=None)
                continue
            step_env = {**env, "STEP_NAME": step.name, "STEP_RUN_ID": step.step_run_id}
            outcome, exit_code, message = run_step(
                step,
                script=step.script,
                env=step_env,
                workspace=workspace,
                events=events,
                cancelled=cancelled,
                mask=mask,
            )
            events.step_finished(step.step_run_id, outcome, exit_code=exit_code, message=message)
            if outcome != "COMPLETED":
                break
    except OSError as error:
        log.exception("job %s could not run", job.job_run_id)
        outcome, message = "FAILED", f"executor error: {error.strerror or error}"
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    events.job_finished(job.job_run_id, outcome, message)
