"""Apply an agent's reports (`schemas.jobs.AgentEvent`) to a locked run.

Reports that come late or twice are normal — an agent reporting FAILED for a job the user has
just stopped, or resending a batch whose answer it never got — and change nothing: the
transitions refuse them, and events numbered at or below `events_applied` are dropped.
"""

from stageline.domain.pipeline import parse_duration
from stageline.domain.statuses import StageStatus
from stageline.engine.progress import RunState
from stageline.engine.transitions import set_work_status
from stageline.schemas.jobs import AgentEvent
from stageline.store.queries import logs as log_queries
from stageline.store.tables import JobRun

S = StageStatus
ASYNC_ENDINGS = {"COMPLETED": S.COMPLETED, "FAILED": S.ASYNC_FAILED, "CANCELED": S.CANCELED}


def apply_event(state: RunState, job: JobRun, event: AgentEvent, now: int) -> None:
    if event.kind == "job_started":
        _job_started(job, now)
        return
    if event.kind == "job_finished":
        assert event.outcome is not None
        _job_finished(state, job, event.outcome, event.message, now)
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
                now=now,
            )
    elif event.kind == "step_outputs":
        step.outputs = [{"key": pair.key, "value": pair.value} for pair in event.outputs]
    elif event.kind == "step_started":
        set_work_status(step, S.RUNNING, now=now)
    elif event.kind == "step_finished":
        assert event.outcome is not None
        if set_work_status(step, S.RUNNING, now=now) or step.status == S.RUNNING:
            step.exit_code = event.exit_code
            set_work_status(step, S(event.outcome), now=now, message=event.message)


def _job_started(job: JobRun, now: int) -> None:
    if not set_work_status(job, S.RUNNING, now=now):
        return
    if job.timeout:
        job.deadline_at = now + parse_duration(job.timeout) * 1000
    if job.is_async:  # the stage goes on without waiting for it
        set_work_status(job, S.ASYNC_RUNNING, now=now)


def _job_finished(
    state: RunState, job: JobRun, outcome: str, message: str | None, now: int
) -> None:
    if job.status in (S.QUEUED, S.REDISPATCH):  # it failed before it could start
        _job_started(job, now)
    ending = ASYNC_ENDINGS[outcome] if job.is_async else S(outcome)
    if not set_work_status(job, ending, now=now, message=message):
        return
    leftover = S.CANCELED if outcome == "CANCELED" else S.SKIPPED
    for step in state.steps_of_job(job):
        if step.status not in (S.COMPLETED, S.FAILED, S.CANCELED, S.SKIPPED):
            set_work_status(step, leftover, now=now)
