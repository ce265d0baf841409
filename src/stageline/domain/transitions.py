"""Which status changes are allowed, as data, and the functions that decide and find paths.

Every change has an intent: work moving forward or ending (PROGRESS), a person running failed
work again (RETRY), or work taken back from a lost build agent (REDISPATCH). Creation is an edge
too, from no status (`None`): planning (INIT or UNSELECTED) and admission (RUNNING, SUSPEND or
IGNORED). A refused transition is an answer (`Decision.accepted` False with a reason), not an
exception: the engine meets late or duplicate events all the time and must be able to ignore them.
"""

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from stageline.domain.statuses import (
    RUN_ADMITTED,
    STAGE_ENDINGS,
    STAGE_IN_FLIGHT,
    STAGE_PLANNED,
    STAGE_RESTARTABLE,
    STAGE_STARTED,
    RunStatus,
    StageStatus,
)

S = StageStatus
R = RunStatus


class Intent(StrEnum):
    """Why a status changes; each intent has its own edges."""

    PROGRESS = "progress"
    RETRY = "retry"
    REDISPATCH = "redispatch"


StatusT = TypeVar("StatusT", RunStatus, StageStatus)
Edges = Mapping[StatusT | None, frozenset[StatusT]]

STAGE_EDGES: dict[StageStatus | None, frozenset[StageStatus]] = {
    None: STAGE_PLANNED,
    S.INIT: frozenset({S.QUEUED, S.SUSPEND, S.SKIPPED, S.UNSELECTED, S.IGNORED, S.CANCELED}),
    S.SUSPEND: frozenset({S.INIT, S.QUEUED, S.IGNORED, S.CANCELED}),
    # A stage's status is derived from its jobs', and one transaction may apply several reports
    # of an agent, so in-flight work may move to any other in-flight status or end in any way.
    **{status: (STAGE_IN_FLIGHT | STAGE_ENDINGS) - {status} for status in STAGE_IN_FLIGHT},
    S.QUEUED: (STAGE_IN_FLIGHT | STAGE_ENDINGS | {S.SKIPPED}) - {S.QUEUED},
    **{status: frozenset() for status in STAGE_RESTARTABLE | {S.UNSELECTED, S.IGNORED}},
}
"""Forward edges for stages, jobs and steps alike; nothing leaves an end state going forward."""

STAGE_RETRY_EDGES: dict[StageStatus | None, frozenset[StageStatus]] = {
    status: frozenset({S.INIT}) for status in STAGE_RESTARTABLE
}
"""A retry puts work that ended back to INIT, to be planned afresh."""

STAGE_REDISPATCH_EDGES: dict[StageStatus | None, frozenset[StageStatus]] = {
    status: frozenset({S.REDISPATCH, S.QUEUED}) - {status}
    for status in STAGE_STARTED | STAGE_ENDINGS | {S.QUEUED, S.SKIPPED}
}
"""A job taken from a lost agent waits as REDISPATCH; its steps are queued to run again."""

RUN_EDGES: dict[RunStatus | None, frozenset[RunStatus]] = {
    None: RUN_ADMITTED,
    R.RUNNING: frozenset({R.COMPLETED, R.FAILED, R.CANCELED, R.PAUSED}),
    R.PAUSED: frozenset({R.RUNNING, R.COMPLETED, R.FAILED, R.CANCELED}),
    R.SUSPEND: frozenset({R.RUNNING, R.IGNORED, R.CANCELED}),
    R.FAILED: frozenset(),
    R.CANCELED: frozenset(),
    R.COMPLETED: frozenset(),
    R.IGNORED: frozenset(),
}
RUN_RETRY_EDGES: dict[RunStatus | None, frozenset[RunStatus]] = {
    R.FAILED: frozenset({R.RUNNING, R.SUSPEND}),
    R.CANCELED: frozenset({R.RUNNING, R.SUSPEND}),
}
"""A retried run runs again, under the same run number, or first waits (SUSPEND) for a slot
of its pipeline's concurrency limit."""

_STAGE_TABLES = {
    Intent.PROGRESS: STAGE_EDGES,
    Intent.RETRY: STAGE_RETRY_EDGES,
    Intent.REDISPATCH: STAGE_REDISPATCH_EDGES,
}
_RUN_TABLES = {Intent.PROGRESS: RUN_EDGES, Intent.RETRY: RUN_RETRY_EDGES, Intent.REDISPATCH: {}}


@dataclass(frozen=True)
class Decision:
    """The answer to a proposed change: accepted with the statuses to pass through (`path`,
    ending with the target), or refused with a reason."""

    accepted: bool
    reason: str = ""
    path: tuple[str, ...] = ()


def edges(proposed: StatusT, intent: Intent = Intent.PROGRESS) -> Edges[StatusT]:
    """The edge table of `proposed`'s kind (run or stage/job/step) for `intent`."""
    table = _RUN_TABLES[intent] if isinstance(proposed, RunStatus) else _STAGE_TABLES[intent]
    return table


def decide(
    current: StatusT | None, proposed: StatusT, intent: Intent = Intent.PROGRESS
) -> Decision:
    """Whether the single edge `current -> proposed` exists; staying put is refused as a no-op."""
    if current == proposed:
        return Decision(accepted=False, reason=f"already {current}")
    if proposed in edges(proposed, intent).get(current, frozenset()):
        return Decision(accepted=True, path=(proposed,))
    return Decision(accepted=False, reason=_refusal(current, proposed, intent))


def route(
    current: StatusT | None,
    target: StatusT,
    intent: Intent = Intent.PROGRESS,
    *,
    via: StatusT | None = None,
) -> Decision:
    """The shortest way from `current` to `target` along `intent`'s edges, passing through `via`
    when given and not yet left behind (work that ends "having run" passes through RUNNING).

    Accepted with the path when one exists, refused with a reason otherwise.
    """
    if current is None:  # creation is one edge: work is planned, a run admitted
        return decide(current, target, intent)
    if current == target:
        return Decision(accepted=False, reason=f"already {current}")
    table = edges(target, intent)
    if via is not None and via not in (current, target):
        first = _shortest(table, current, via)
        second = _shortest(table, via, target) if first is not None else None
        if first is not None and second is not None:
            return Decision(accepted=True, path=first + second)
    found = _shortest(table, current, target)
    if found is None:
        return Decision(accepted=False, reason=_refusal(current, target, intent))
    return Decision(accepted=True, path=found)


def _shortest(
    table: Edges[StatusT], start: StatusT | None, goal: StatusT
) -> tuple[StatusT, ...] | None:
    """Breadth-first search; neighbours in their declaration order, so paths are deterministic."""
    came_from: dict[StatusT | None, StatusT | None] = {start: None}
    queue: deque[StatusT | None] = deque([start])
    while queue:
        node = queue.popleft()
        for step in sorted(table.get(node, frozenset())):
            if step in came_from:
                continue
            came_from[step] = node
            if step == goal:
                path: list[StatusT] = [step]
                while (back := came_from[path[-1]]) is not None and back != start:
                    path.append(back)
                return tuple(reversed(path))
            queue.append(step)
    return None


def _refusal(current: object, proposed: object, intent: Intent) -> str:
    where = "cannot be created as" if current is None else "cannot become"
    how = "" if intent is Intent.PROGRESS else f" by {intent.value}"
    return f"{current or 'new work'} {where} {proposed}{how}"
