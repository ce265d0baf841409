"""Which status changes are allowed, as data, and the one function that decides.

A refused transition is an answer (`Decision.accepted` False with a reason), not an exception:
the engine meets late or duplicate events all the time and must be able to ignore them.
"""

from dataclasses import dataclass
from typing import TypeVar

from stageline.domain.statuses import RunStatus, StageStatus

S = StageStatus
R = RunStatus

STAGE_EDGES: dict[StageStatus, frozenset[StageStatus]] = {
    S.INIT: frozenset({S.QUEUED, S.SUSPEND, S.SKIPPED, S.UNSELECTED, S.IGNORED, S.CANCELED}),
    S.QUEUED: frozenset({S.RUNNING, S.SKIPPED, S.CANCELED, S.FAILED}),
    S.SUSPEND: frozenset({S.QUEUED, S.IGNORED, S.CANCELED}),
    S.RUNNING: frozenset(
        {S.COMPLETED, S.FAILED, S.CANCELED, S.PAUSED, S.ASYNC_RUNNING, S.REDISPATCH}
    ),
    S.PAUSED: frozenset({S.RUNNING, S.FAILED, S.CANCELED}),
    S.REDISPATCH: frozenset({S.QUEUED, S.FAILED, S.CANCELED}),
    S.ASYNC_RUNNING: frozenset({S.COMPLETED, S.ASYNC_FAILED, S.CANCELED}),
    # A retry puts failed or canceled work back in the queue; nothing else leaves an end state.
    S.FAILED: frozenset({S.QUEUED}),
    S.CANCELED: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.SKIPPED: frozenset(),
    S.IGNORED: frozenset(),
    S.UNSELECTED: frozenset(),
    S.ASYNC_FAILED: frozenset(),
}
"""Edges for stages, jobs and steps alike."""

RUN_EDGES: dict[RunStatus, frozenset[RunStatus]] = {
    R.RUNNING: frozenset({R.COMPLETED, R.FAILED, R.CANCELED, R.PAUSED}),
    R.PAUSED: frozenset({R.RUNNING, R.FAILED, R.CANCELED}),
    R.SUSPEND: frozenset({R.RUNNING, R.IGNORED, R.CANCELED}),
    R.FAILED: frozenset({R.RUNNING}),
    R.CANCELED: frozenset({R.RUNNING}),
    R.COMPLETED: frozenset(),
    R.IGNORED: frozenset(),
}

StatusT = TypeVar("StatusT", RunStatus, StageStatus)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str = ""


ACCEPT = Decision(accepted=True)


def decide(current: StatusT, proposed: StatusT) -> Decision:
    """Decide whether `current -> proposed` is allowed; staying put is refused as a no-op."""
    if current == proposed:
        return Decision(accepted=False, reason=f"already {current}")
    if isinstance(current, RunStatus):
        allowed = proposed in RUN_EDGES[current]
    else:
        allowed = proposed in STAGE_EDGES[current]
    if allowed:
        return ACCEPT
    return Decision(accepted=False, reason=f"{current} cannot become {proposed}")
