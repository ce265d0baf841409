"""The one door through which a run, stage, job or step changes status.

`apply` takes a row-locked unit of work (`RunState`), asks the domain's table for the path to the
target, writes each hop with the times and claim fields it implies, and appends it to the unit's
journal; the caller gets the domain's `Decision` and handles it. A refused change writes nothing:
late and duplicate events are normal (an agent reporting FAILED for a job the user has just
stopped) and must not overwrite what is true. The journal becomes the change log when the unit
commits (`engine.journal`). No other module assigns a status; a test keeps it so.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from stageline.domain import rollup
from stageline.domain.statuses import (
    RUN_TERMINAL,
    STAGE_ENDINGS,
    STAGE_TERMINAL,
    RunStatus,
    StageStatus,
)
from stageline.domain.transitions import Decision, Intent, decide, route
from stageline.engine.journal import Entity
from stageline.engine.state import RunState
from stageline.store.tables import JobRun, StageRun, StepRun

log = logging.getLogger(__name__)

S = StageStatus
Work = StageRun | JobRun | StepRun
ENTITY: dict[type[Work], Entity] = {StageRun: "stage", JobRun: "job", StepRun: "step"}


def apply(
    state: RunState,
    item: Work,
    target: StageStatus,
    *,
    intent: Intent = Intent.PROGRESS,
    started: bool = False,
    message: str | None = None,
) -> Decision:
    """Move a stage, job or step of `state` to `target` along the domain's path for `intent`.

    `started` routes the path through RUNNING when the work has not run yet, so that work ending
    at once (a stage without jobs, a review decided) still shows when it started. `message` is
    set on jobs and steps that move. RETRY and REDISPATCH clear what the earlier attempt left.
    """
    via = S.RUNNING if started and item.start_time is None else None  # not run yet
    decision = route(S(item.status), target, intent, via=via)
    if not decision.accepted and intent is not Intent.PROGRESS and item.status == target:
        decision = Decision(accepted=True)  # restarted where it stands: no change, but reset
        _restart(item, intent)
    if not decision.accepted:
        log.debug("%s %s: %s", ENTITY[type(item)], item.id, decision.reason)
        return decision
    for hop in decision.path:
        before = item.status
        _write(item, S(hop), intent, now=state.now)
        state.journal.record(state.run, ENTITY[type(item)], item.id, before, hop)
        state.changed = True
    if message is not None and not isinstance(item, StageRun):
        item.message = message
    return decision


def apply_all(
    state: RunState, items: Iterable[Work], target: StageStatus, *, message: str | None = None
) -> int:
    """`apply` to each item that can reach `target`; those that cannot (already ended, say) are
    left as they are, which is what sweeping moves ("cancel what still runs") want. Returns how
    many moved."""
    return sum(apply(state, item, target, message=message).accepted for item in items)


def apply_run(state: RunState, target: RunStatus, *, intent: Intent = Intent.PROGRESS) -> Decision:
    """Move the run of `state` to `target`; a run that ends gets its `end_time`."""
    run = state.run
    decision = decide(RunStatus(run.status), target, intent)
    if not decision.accepted:
        if run.status != target:
            log.debug("run %s: %s", run.id, decision.reason)
        return decision
    before = run.status
    run.status = target
    run.end_time = state.now if target in RUN_TERMINAL else None
    run.updated_at = state.now
    state.journal.record(run, "run", run.id, before, target)
    state.changed = True
    return decision


def admit(state: RunState, admitted: RunStatus) -> Decision:
    """Create a new run as `admitted` (what admission decided) and record its creation: that
    status and its planned stages, jobs and steps must be what the table lets work be created
    as. Refused creations raise: they are bugs."""
    run = state.run
    decision = decide(None, admitted)
    work: list[Work] = [*state.stages, *state.jobs, *state.steps]
    for item in work:
        planned = decide(None, S(item.status))
        assert planned.accepted, planned.reason
    assert decision.accepted, decision.reason
    run.status = admitted
    state.journal.record(run, "run", run.id, None, admitted)
    return decision


def _write(item: Work, status: StageStatus, intent: Intent, *, now: int) -> None:
    item.status = status
    if intent is not Intent.PROGRESS:
        _restart(item, intent)
        return
    if status is S.QUEUED:  # queued afresh: no end yet
        item.end_time = None
    if status is S.RUNNING and item.start_time is None:
        item.start_time = now
    if status in STAGE_ENDINGS:
        item.end_time = now
    if status in STAGE_TERMINAL and not isinstance(item, StageRun):
        item.deadline_at = None
        if isinstance(item, JobRun):
            item.lease_expires_at = None  # the claim stays, so that late log lines are still taken


def _restart(item: Work, intent: Intent) -> None:
    """Clear what an earlier attempt left. A job taken from a lost agent (REDISPATCH) keeps its
    first start and its dispatch count, which caps how often it is taken back."""
    item.end_time = None
    if intent is Intent.RETRY or not isinstance(item, JobRun):
        item.start_time = None
    if isinstance(item, JobRun):
        item.message = None
        item.claimed_by = None
        item.claimed_at = None
        item.dispatch_id = None
        item.lease_expires_at = None
        item.deadline_at = None
        if intent is Intent.RETRY:
            item.dispatch_count = 0
    if isinstance(item, StepRun):
        item.message = None
        item.exit_code = None
        item.outputs = []
        item.approvals = []
        item.deadline_at = None


def stage_summary(stages: Iterable[StageRun]) -> list[dict[str, Any]]:
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


def roll_up(state: RunState, *, run: bool = True) -> None:
    """Derive every stage's status from its jobs and (unless `run` is False) the run's from its
    stages.

    Stages without jobs are moved by the engine directly and are left alone here. The run's
    denormalized `stage_summary` is rewritten in the same transaction.
    """
    jobs_by_stage: dict[str, list[JobRun]] = defaultdict(list)
    for job in state.jobs:
        jobs_by_stage[job.stage_run_id].append(job)
    for stage in state.stages:
        stage_jobs = jobs_by_stage.get(stage.id)
        if stage_jobs:
            derived = rollup.stage_status([S(job.status) for job in stage_jobs])
            if derived != stage.status:
                apply(state, stage, derived)
            started = [job.start_time for job in stage_jobs if job.start_time is not None]
            if stage.start_time is None and started:  # it may have skipped RUNNING
                stage.start_time = min(started)
    derived_run = rollup.run_status([S(stage.status) for stage in state.stages])
    if run and derived_run != state.run.status:
        apply_run(state, derived_run)
    summary = stage_summary(state.stages)
    if summary != state.run.stage_summary:  # rewriting the same JSON costs an UPDATE of it
        state.run.stage_summary = summary
    if state.changed:
        state.run.updated_at = state.now
