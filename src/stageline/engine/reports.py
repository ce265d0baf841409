"""Apply an agent's reports (`schemas.jobs.AgentEvent`) to a locked run.

Reports that come late or twice are normal — an agent reporting FAILED for a job the user has
just stopped, or resending a batch whose answer it never got — and change nothing: the door
refuses them, and events numbered at or below `events_applied` are dropped.
"""

from stageline.domain.masking import masked_outputs, masker
from stageline.domain.pipeline import parse_duration
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


def apply_event(state: RunState, job: JobRun, event: AgentEvent) -> None:
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
        if event.lines:
            log_queries.append_log_lines(
                state.session,
                step_run_id=step.id,
                first_line_no=event.first_line,
                lines=event.lines,
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
        job.deadline_at = state.now + parse_duration(job.timeout) * 1000
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
