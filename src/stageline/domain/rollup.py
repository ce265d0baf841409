"""Derive a stage's status from its jobs' statuses and a run's from its stages'.

One rule set, written as an ordered list of (condition, result) pairs: the first that holds wins.
Work left out of the run (UNSELECTED) is neutral to both: a stage is derived from its chosen
jobs, a run from its chosen stages, and only when nothing was chosen is the stage UNSELECTED.
"""

from collections.abc import Callable, Collection

from stageline.domain.statuses import (
    STAGE_HELD,
    STAGE_MOVING,
    STAGE_STARTED,
    STAGE_TERMINAL,
    RunStatus,
    StageStatus,
)

S = StageStatus

Rule = tuple[Callable[[Collection[StageStatus]], bool], StageStatus]


def _all_in(*statuses: StageStatus) -> Callable[[Collection[StageStatus]], bool]:
    allowed = frozenset(statuses)
    return lambda children: all(c in allowed for c in children)


def _any_is(status: StageStatus) -> Callable[[Collection[StageStatus]], bool]:
    return lambda children: status in children


def _some_progress(children: Collection[StageStatus]) -> bool:
    return any(c in STAGE_STARTED or c in STAGE_TERMINAL for c in children)


def _all_terminal(children: Collection[StageStatus]) -> bool:
    return all(c in STAGE_TERMINAL or c is S.ASYNC_RUNNING for c in children)


STAGE_RULES: tuple[Rule, ...] = (
    (_all_in(S.IGNORED), S.IGNORED),
    (_all_in(S.SUSPEND), S.SUSPEND),
    (_all_in(S.SKIPPED), S.SKIPPED),
    (_any_is(S.RUNNING), S.RUNNING),
    (_any_is(S.REDISPATCH), S.REDISPATCH),
    (_any_is(S.PAUSED), S.PAUSED),
    (lambda c: not _all_terminal(c) and _some_progress(c), S.RUNNING),
    (_any_is(S.QUEUED), S.QUEUED),
    (lambda c: not _all_terminal(c), S.INIT),
    (_any_is(S.FAILED), S.FAILED),
    (_any_is(S.CANCELED), S.CANCELED),
    (_any_is(S.ASYNC_RUNNING), S.ASYNC_RUNNING),
    (_any_is(S.ASYNC_FAILED), S.ASYNC_FAILED),
)


def stage_status(job_statuses: Collection[StageStatus]) -> StageStatus:
    """The status a stage shows given its jobs' statuses (a stage with no jobs is COMPLETED).

    UNSELECTED jobs do not count: an unchosen job is not ended work, so a stage whose chosen
    jobs are INIT, QUEUED or SUSPEND has not started, whatever it left out.
    """
    chosen = [status for status in job_statuses if status != S.UNSELECTED]
    if job_statuses and not chosen:
        return S.UNSELECTED
    for holds, result in STAGE_RULES:
        if chosen and holds(chosen):
            return result
    return S.COMPLETED


def run_status(stage_statuses: Collection[StageStatus]) -> RunStatus:
    """The status a run shows given its stages' statuses.

    Stages still INIT after a failed or canceled stage never start, so they do not keep the run
    RUNNING; stages still INIT while nothing failed mean the run is between stages. A run whose
    async jobs still run is RUNNING; their failure (ASYNC_FAILED) does not fail it.
    """
    statuses = frozenset(stage_statuses) - {S.UNSELECTED}
    if statuses & STAGE_MOVING:
        return RunStatus.RUNNING
    if S.PAUSED in statuses:
        return RunStatus.PAUSED
    if S.FAILED in statuses:
        return RunStatus.FAILED
    if S.CANCELED in statuses:
        return RunStatus.CANCELED
    if statuses and statuses <= {S.IGNORED}:
        return RunStatus.IGNORED
    if statuses and statuses <= STAGE_HELD and S.SUSPEND in statuses:
        return RunStatus.SUSPEND
    if S.INIT in statuses or S.SUSPEND in statuses:
        return RunStatus.RUNNING
    return RunStatus.COMPLETED
