"""Apply an agent's reports (`schemas.jobs.AgentEvent`) to a locked run.

Reports that come late or twice are normal — an agent reporting FAILED for a job the user has
just stopped, or resending a batch whose answer it never got — and change nothing: the door
refuses them, and events numbered at or below `events_applied` are dropped.

A step's log is bounded (`LogLimits`): past its last line the server keeps one line saying so
and drops the rest, and each line is cut to a number of bytes. The job goes on either way: a
refusal would cost the agent the job's other reports, and a step that writes without end
should still be able to finish.
"""

from dataclasses import dataclass

from stageline.domain.masking import masked_outputs, masker
from stageline.domain.pipeline import job_timeout_seconds
from stageline.domain.statuses import (
    ASYNC_OUTCOMES,
    STAGE_STEP_FINISHED,
    STAGE_WAITING_FOR_AGENT,
    StageStatus,
)
from stageline.engine.state import RunState
from stageline.engine.transitions import apply, apply_all
from stageline.schemas.jobs import AgentEvent
from stageline.store.queries import logs as log_queries
from stageline.store.tables import JobRun

S = StageStatus


@dataclass(frozen=True)
class LogLimits:
    max_lines_per_step: int = 100_000
    """Lines kept per step (over all its retries); then one line saying the rest was dropped."""
    max_line_bytes: int = 65_536
    """Bytes (UTF-8) kept of one line; a longer one is cut and says so."""

    def marker(self) -> str:
        return (
            f"[stageline: this step logged more than {self.max_lines_per_step} lines;"
            " the rest of its log was dropped]"
        )

    def clip(self, first_line: int, lines: list[str]) -> list[str]:
        """What to store of `lines`, numbered from `first_line`: the lines before the limit,
        the marker in the limit's own place, nothing after it."""
        room = max(0, self.max_lines_per_step - first_line)
        kept = [self._cut(line) for line in lines[:room]]
        if first_line <= self.max_lines_per_step < first_line + len(lines):
            kept.append(self.marker())
        return kept

    def _cut(self, line: str) -> str:
        if len(line) * 4 <= self.max_line_bytes:  # no line that short can be too long
            return line
        data = line.encode()
        if len(data) <= self.max_line_bytes:
            return line
        kept = data[: self.max_line_bytes].decode(errors="ignore")
        return f"{kept} [stageline: line cut at {self.max_line_bytes} bytes]"


def apply_event(
    state: RunState, job: JobRun, event: AgentEvent, limits: LogLimits = LogLimits()
) -> None:
    if event.kind == "job_started":
        _job_started(state, job)
        return
    if event.kind == "job_finished":
        assert event.outcome is not None
        _job_finished(state, job, event.outcome, event.message)
        return
    step = state.step(event.step_run_id or "")
    if step is None or step.job_run_id != job.id:
        return  # not a step of this job: nothing to apply
    if event.kind == "step_log":
        assert event.first_line is not None
        lines = limits.clip(event.first_line, event.lines)
        if lines:
            log_queries.append_log_lines(
                state.session,
                step_run_id=step.id,
                first_line_no=event.first_line,
                lines=lines,
                now=state.now,
            )
    elif event.kind == "step_outputs":
        # Masked again here: an agent of an earlier version masked values but not keys.
        pairs = [(pair.key, pair.value) for pair in event.outputs]
        masked = masked_outputs(pairs, masker(state.secret_values)) if pairs else []
        step.outputs = [{"key": key, "value": value} for key, value in masked]
    elif event.kind == "step_started":
        apply(state, step, S.RUNNING)
    elif event.kind == "step_finished":
        assert event.outcome is not None
        ended = apply(state, step, S(event.outcome), started=True, message=event.message)
        if ended.accepted:
            step.exit_code = event.exit_code


def _job_started(state: RunState, job: JobRun) -> None:
    if not apply(state, job, S.RUNNING).accepted:
        return
    if job.timeout:
        job.deadline_at = state.now + job_timeout_seconds(job.timeout) * 1000
    if job.is_async:  # the stage goes on without waiting for it
        apply(state, job, S.ASYNC_RUNNING)


def _job_finished(state: RunState, job: JobRun, outcome: str, message: str | None) -> None:
    if job.status in STAGE_WAITING_FOR_AGENT:  # it failed before it could start
        _job_started(state, job)
    ending = ASYNC_OUTCOMES[outcome] if job.is_async else S(outcome)
    if not apply(state, job, ending, message=message).accepted:
        return
    leftover = S.CANCELED if outcome == "CANCELED" else S.SKIPPED
    unfinished = [s for s in state.steps_of_job(job) if s.status not in STAGE_STEP_FINISHED]
    apply_all(state, unfinished, leftover)
