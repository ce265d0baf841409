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

from stageline.agent.checkout import check_out_sources
from stageline.domain.masking import masked_outputs, masker
from stageline.schemas.jobs import JobAssignment, JobEvents, JobOutcome, StepAssignment

log = logging.getLogger(__name__)

INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "SHELL", "TMPDIR")
"""The only variables of the executor's own environment a step sees; no server secrets leak."""
LOG_FLUSH_SECONDS = 0.2
MAX_LINE_CHARS = 65_536
KILL_GRACE_SECONDS = 5.0


OUTPUTS_ENV = "STAGELINE_OUTPUTS"
"""Names the file a step may write `key=value` lines to; they become the step's outputs."""
MAX_OUTPUTS = 256


def step_environment(job: JobAssignment, workspace: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(job.env)
    env["WORKSPACE"] = str(workspace)
    return env


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
    outputs_path = outputs_file(workspace, step)
    outputs_path.touch()
    process = subprocess.Popen(
        ["bash", "-e", str(script_path)],
        cwd=workspace,
        env={**env, OUTPUTS_ENV: str(outputs_path)},
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


def outputs_file(workspace: Path, step: StepAssignment) -> Path:
    return workspace / ".stageline" / f"{step.step_run_id}.outputs"


def read_outputs(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(key, value) pairs from `key=value` lines (the last of a key wins), and complaints about
    lines that are not such pairs. Blank lines and `#` comments are skipped."""
    found: dict[str, str] = {}
    complaints = []
    text = path.read_text(errors="replace") if path.exists() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not key or len(key) > 256:
            complaints.append(f"[stageline] outputs line {number} ignored: not key=value")
        elif len(found) >= MAX_OUTPUTS and key not in found:
            complaints.append(f"[stageline] outputs line {number} ignored: over {MAX_OUTPUTS} keys")
        else:
            found[key] = value[:65_536]
    return list(found.items()), complaints


def collect_artifacts(workspace: Path, patterns: tuple[str, ...]) -> tuple[list[Path], str | None]:
    """Files matching the patterns inside the workspace, or why the step must fail."""
    files: list[Path] = []
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            return [], f"artifact pattern '{pattern}' must be relative to the workspace"
        matches = sorted(p for p in workspace.glob(pattern) if p.is_file())
        if not matches:
            return [], f"artifact pattern '{pattern}' matched no file"
        outside = next((m for m in matches if not m.resolve().is_relative_to(workspace)), None)
        if outside is not None:  # a symbolic link must not upload the agent host's files
            return [], f"artifact '{outside.relative_to(workspace)}' leads outside the workspace"
        files.extend(m for m in matches if m not in files)
    return files, None


def _finish_step(
    step: StepAssignment,
    workspace: Path,
    events: JobEvents,
    outcome: JobOutcome,
    mask: Callable[[str], str],
) -> tuple[JobOutcome, str | None]:
    """Report the step's outputs (secrets masked in keys and values, as in logs), upload its
    artifacts; the outcome may turn FAILED here."""
    outputs, complaints = read_outputs(outputs_file(workspace, step))
    if complaints:
        events.step_log(step.step_run_id, complaints)
    if outputs:
        events.step_outputs(step.step_run_id, masked_outputs(outputs, mask))
    if outcome != "COMPLETED" or not step.artifacts:
        return outcome, None
    files, problem = collect_artifacts(workspace, step.artifacts)
    for path in files:
        name = path.relative_to(workspace).as_posix()
        problem = problem or events.upload_artifact(step.step_run_id, name, path)
    if problem is not None:
        events.step_log(step.step_run_id, [f"[stageline] {problem}"])
        return "FAILED", problem
    return outcome, None


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
        for index, step in enumerate(job.steps):
            if cancelled.is_set():
                outcome, message = "CANCELED", "canceled"
                break
            events.step_started(job.job_run_id, step.step_run_id)
            if index == 0 and job.checkouts:
                problem = check_out_sources(
                    job,
                    workspace,
                    events=events,
                    step_run_id=step.step_run_id,
                    mask=mask,
                    cancelled=cancelled,
                )
                if problem is not None:
                    canceled = cancelled.is_set()
                    outcome = "CANCELED" if canceled else "FAILED"
                    message = "canceled" if canceled else problem
                    events.step_finished(step.step_run_id, outcome, exit_code=None, message=message)
                    break
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
            outcome, problem = _finish_step(step, workspace, events, outcome, mask)
            message = problem or message
            events.step_finished(step.step_run_id, outcome, exit_code=exit_code, message=message)
            if outcome != "COMPLETED":
                break
    except OSError as error:
        log.exception("job %s could not run", job.job_run_id)
        outcome, message = "FAILED", f"executor error: {error.strerror or error}"
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    events.job_finished(job.job_run_id, outcome, message)
