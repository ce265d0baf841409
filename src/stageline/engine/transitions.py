"""Write a status: check it with `domain.transitions.decide`, stamp times, roll up to the run.

A refused transition returns False and writes nothing: late and duplicate events are normal (an
agent reporting FAILED for a job the user has just stopped) and must not overwrite what is true.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from stageline.domain import rollup
from stageline.domain.statuses import RUN_TERMINAL, STAGE_TERMINAL, RunStatus, StageStatus
from stageline.domain.transitions import decide
from stageline.store.tables import JobRun, PipelineRun, StageRun, StepRun

log = logging.getLogger(__name__)

ENDS_WITH_TIME = frozenset(
    {StageStatus.COMPLETED, StageStatus.FAILED, StageStatus.CANCELED, StageStatus.ASYNC_FAILED}
)
"""End states that stamp `end_time`; SKIPPED, UNSELECTED and IGNORED work was never reached."""

Work = StageRun | JobRun | StepRun


def set_work_status(
    item: Work, proposed: StageStatus, *, now: int, message: str | None = None
) -> bool:
    """Move a stage, job or step to `proposed` if allowed; True when it moved."""
    decision = decide(StageStatus(item.status), proposed)
    if not decision.accepted:
        log.debug("%s %s: %s", type(item).__name__, item.id, decision.reason)
        return False
    item.status = proposed
    if proposed is StageStatus.QUEUED:  # queued afresh (first time or retry): no end yet
        item.end_time = None
    if proposed is StageStatus.RUNNING and item.start_time is None:
        item.start_time = now
    if proposed in ENDS_WITH_TIME:
        item.end_time = now
    if isinstance(item, JobRun) and proposed in STAGE_TERMINAL:
        item.lease_expires_at = None  # the claim stays, so that late log lines are still taken
        item.deadline_at = None
    if isinstance(item, StepRun) and proposed in STAGE_TERMINAL:
        item.deadline_at = None
    if message is not None and not isinstance(item, StageRun):
        item.message = message
    return True


def restart_work(item: Work, status: StageStatus, *, message: str | None = None) -> None:
    """Put a stage, job or step back to `status` (INIT or QUEUED) to run afresh, whatever it
    was: the one write that bypasses `decide`, for retries and for jobs taken from a lost agent.
    A restarted job keeps its claim history (dispatch_count) but loses the claim itself."""
    item.status = status
    item.start_time = None
    item.end_time = None
    if isinstance(item, JobRun):
        item.message = message
        item.claimed_by = None
        item.claimed_at = None
        item.dispatch_id = None
        item.lease_expires_at = None
        item.deadline_at = None
    if isinstance(item, StepRun):
        item.message = None
        item.exit_code = None
        item.outputs = []
        item.approvals = []
        item.deadline_at = None


def set_run_status(run: PipelineRun, proposed: RunStatus, *, now: int) -> bool:
    decision = decide(RunStatus(run.status), proposed)
    if not decision.accepted:
        if RunStatus(run.status) is not proposed:
            log.debug("run %s: %s", run.id, decision.reason)
        return False
    run.status = proposed
    run.end_time = now if proposed in RUN_TERMINAL else None
    run.updated_at = now
    return True


def stage_summary(stages: Sequence[StageRun]) -> list[dict[str, Any]]:
    return [
        {
            "id": stage.id,
            "name": stage.name,
            "sequence": stage.sequence,
            "status": stage.status,
            "start_time": stage.start_time,
            "end_time": stage.end_time,
        }
        for stage in stages
    ]


def roll_up(
    run: PipelineRun, stages: Sequence[StageRun], jobs: Sequence[JobRun], *, now: int
) -> None:
    """Derive every stage's status from its jobs and the run's from its stages.

    Stages without jobs are moved by the engine directly and are left alone here. The run's
    denormalized `stage_summary` is rewritten in the same transaction.
    """
    jobs_by_stage: dict[str, list[JobRun]] = defaultdict(list)
    for job in jobs:
        jobs_by_stage[job.stage_run_id].append(job)
    for stage in stages:
        stage_jobs = jobs_by_stage.get(stage.id)
        if stage_jobs:
            derived = rollup.stage_status([StageStatus(job.status) for job in stage_jobs])
            if derived != stage.status:
                set_work_status(stage, derived, now=now)
            started = [job.start_time for job in stage_jobs if job.start_time is not None]
            if stage.start_time is None and started:  # it may have skipped RUNNING
                stage.start_time = min(started)
    derived_run = rollup.run_status([StageStatus(stage.status) for stage in stages])
    if derived_run != run.status:
        set_run_status(run, derived_run, now=now)
    run.stage_summary = stage_summary(stages)
    run.updated_at = now
