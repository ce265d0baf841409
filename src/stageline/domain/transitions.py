"""Which status changes are allowed, as data, and the one function that decides.

A refused transition is an answer (`Decision.accepted` False with a reason), not an exception:
the engine meets late or duplicate events all the time and must be able to ignore them.
"""

from dataclasses import dataclass
from typing import TypeVar

from stageline.domain.statuses import RunStatus, StageStatus

S = StageStatus
R = RunStatus

IN_FLIGHT = frozenset({S.QUEUED, S.RUNNING, S.PAUSED, S.REDISPATCH, S.ASYNC_RUNNING})
"""Work that has been queued and not ended. A stage's status is derived from its jobs', and one
transaction may apply several reports of an agent, so in-flight work may move to any other
in-flight status or end in any way."""
ENDINGS = frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.ASYNC_FAILED})

STAGE_EDGES: dict[StageStatus, frozenset[StageStatus]] = {
    S.INIT: frozenset({S.QUEUED, S.SUSPEND, S.SKIPPED, S.UNSELECTED, S.IGNORED, S.CANCELED}),
    S.SUSPEND: frozenset({S.INIT, S.QUEUED, S.IGNORED, S.CANCELED}),
    **{status: (IN_FLIGHT | ENDINGS) - {status} for status in IN_FLIGHT},
    S.QUEUED: (IN_FLIGHT | ENDINGS | {S.SKIPPED}) - {S.QUEUED},
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
    R.PAUSED: frozenset({R.RUNNING, R.COMPLETED, R.FAILED, R.CANCELED}),
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
