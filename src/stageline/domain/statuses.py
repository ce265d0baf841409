"""The status and trigger vocabularies of CodeArts Pipeline, spelled exactly as on the wire.

Groups of statuses are defined once here and never re-listed at call sites.
"""

from enum import StrEnum


class RunStatus(StrEnum):
    """Status of a pipeline run (`PipelineLatestRun.status`)."""

    COMPLETED = "COMPLETED"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    PAUSED = "PAUSED"
    SUSPEND = "SUSPEND"
    IGNORED = "IGNORED"


class StageStatus(StrEnum):
    """Status of a stage, a job or a step (`stage_status_list[].status`)."""

    INIT = "INIT"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    IGNORED = "IGNORED"
    PAUSED = "PAUSED"
    SUSPEND = "SUSPEND"
    ASYNC_RUNNING = "ASYNC_RUNNING"
    ASYNC_FAILED = "ASYNC_FAILED"
    UNSELECTED = "UNSELECTED"
    REDISPATCH = "REDISPATCH"


class TriggerType(StrEnum):
    """What started a run (`trigger_type`, `build_params.event_type`)."""

    MANUAL = "Manual"
    SCHEDULER = "Scheduler"
    MR = "MR"
    PUSH = "Push"
    CREATE_TAG = "CreateTag"
    ISSUE = "Issue"
    NOTE = "Note"


RUN_TERMINAL = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.IGNORED}
)
RUN_ACTIVE = frozenset(set(RunStatus) - RUN_TERMINAL)

STAGE_TERMINAL = frozenset(
    {
        StageStatus.COMPLETED,
        StageStatus.FAILED,
        StageStatus.CANCELED,
        StageStatus.SKIPPED,
        StageStatus.IGNORED,
        StageStatus.UNSELECTED,
        StageStatus.ASYNC_FAILED,
    }
)
"""Statuses a stage, job or step never leaves (except through an explicit retry)."""

STAGE_STARTED = frozenset(
    {
        StageStatus.RUNNING,
        StageStatus.PAUSED,
        StageStatus.REDISPATCH,
        StageStatus.ASYNC_RUNNING,
    }
)
"""Statuses that mean work has begun and not yet ended."""

STAGE_SUCCESSFUL = frozenset(
    {
        StageStatus.COMPLETED,
        StageStatus.SKIPPED,
        StageStatus.UNSELECTED,
        StageStatus.ASYNC_RUNNING,
        StageStatus.ASYNC_FAILED,
    }
)
"""Outcomes that let the next stage start (async jobs never hold a pipeline back)."""
