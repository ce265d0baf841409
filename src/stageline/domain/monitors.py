"""How a pipeline's runs look to build monitors: CCTray's activity and last build status, and a
status badge's message and colour.

A monitor asks two questions: is something building now, and how did the last build end. A
run that is queued, running or paused answers the first; the last run that started and ended
(`RUN_BUILT`) answers the second, so a CCTray client keeps showing red while the fix builds.
"""

from dataclasses import dataclass
from enum import StrEnum

from stageline.domain.statuses import RUN_ACTIVE, RunStatus


class CCActivity(StrEnum):
    """CCTray `activity`; `CheckingModifications` has no counterpart here."""

    SLEEPING = "Sleeping"
    BUILDING = "Building"


class CCStatus(StrEnum):
    """CCTray `lastBuildStatus`."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    EXCEPTION = "Exception"
    """Reserved for failures of the build system itself; no run status says that, so unused."""
    UNKNOWN = "Unknown"


CC_STATUS_OF_RUN: dict[str, CCStatus] = {
    RunStatus.COMPLETED: CCStatus.SUCCESS,
    RunStatus.FAILED: CCStatus.FAILURE,
    # Jenkins and GoCD report an aborted build as a failure: it did not deliver.
    RunStatus.CANCELED: CCStatus.FAILURE,
}
"""The last build's status by its run's status; anything else (no build yet) is Unknown."""


def cc_activity(latest_status: str | None) -> CCActivity:
    """Building while the pipeline's latest run has not ended (queued, running or paused)."""
    return CCActivity.BUILDING if latest_status in RUN_ACTIVE else CCActivity.SLEEPING


def cc_last_build_status(built_status: str | None) -> CCStatus:
    """The CCTray status of the last run that started and ended; Unknown when there is none."""
    if built_status is None:
        return CCStatus.UNKNOWN
    return CC_STATUS_OF_RUN.get(built_status, CCStatus.UNKNOWN)


@dataclass(frozen=True)
class BadgeLook:
    message: str
    colour: str
    """A CSS hex colour: the colours shields.io, GitLab and Woodpecker use for the same news."""


PASSING_GREEN = "#4c1"
FAILING_RED = "#e05d44"
BUSY_YELLOW = "#dfb317"
INACTIVE_GREY = "#9f9f9f"

BADGE_OF_RUN: dict[str, BadgeLook] = {
    RunStatus.COMPLETED: BadgeLook("passing", PASSING_GREEN),
    RunStatus.FAILED: BadgeLook("failing", FAILING_RED),
    RunStatus.RUNNING: BadgeLook("running", BUSY_YELLOW),
    RunStatus.PAUSED: BadgeLook("paused", BUSY_YELLOW),
    RunStatus.SUSPEND: BadgeLook("queued", BUSY_YELLOW),
    RunStatus.CANCELED: BadgeLook("canceled", INACTIVE_GREY),
    RunStatus.IGNORED: BadgeLook("ignored", INACTIVE_GREY),
}
UNKNOWN_BADGE = BadgeLook("unknown", INACTIVE_GREY)
"""For a pipeline that has no run (on that branch), or that does not exist: a README image
keeps rendering, as GitLab's badges do."""


def badge_look(latest_status: str | None) -> BadgeLook:
    """What a badge says about a pipeline's latest run: its status as it is now."""
    if latest_status is None:
        return UNKNOWN_BADGE
    return BADGE_OF_RUN.get(latest_status, UNKNOWN_BADGE)
