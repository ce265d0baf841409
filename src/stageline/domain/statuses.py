"""The status and trigger vocabularies of CodeArts Pipeline, spelled exactly as on the wire.

Groups of statuses are defined once here and never re-listed at call sites.
"""

from enum import StrEnum
from typing import Literal


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


S = StageStatus
R = RunStatus

# -- runs ----------------------------------------------------------------------------------------

RUN_TERMINAL = frozenset({R.COMPLETED, R.FAILED, R.CANCELED, R.IGNORED})
"""Runs that have ended (IGNORED: dropped by the concurrency limit before it started)."""
RUN_ACTIVE = frozenset(set(RunStatus) - RUN_TERMINAL)
RUN_RETRYABLE = frozenset({R.FAILED, R.CANCELED})
"""Runs whose failed or canceled jobs may be run again, in the same run."""
RUN_HELD = frozenset({R.SUSPEND, R.IGNORED})
"""Runs the concurrency limit holds back (SUSPEND) or dropped (IGNORED): nothing in them moves."""
RUN_IN_PROGRESS = frozenset({R.RUNNING, R.PAUSED})
"""Runs that hold one of their pipeline's concurrency slots."""
RUN_ADMITTED = frozenset({R.RUNNING, R.SUSPEND, R.IGNORED})
"""What a new run may start as: admission decides by the pipeline's concurrency limit."""
RUN_BUILT = frozenset({R.COMPLETED, R.FAILED, R.CANCELED})
"""Runs that started and ended: what a build monitor reports as a pipeline's last build (an
IGNORED run never started, so it is not one)."""

# -- stages, jobs and steps ----------------------------------------------------------------------

STAGE_PLANNED = frozenset({S.INIT, S.UNSELECTED})
"""What a stage, job or step starts as: chosen for the run, or not."""
STAGE_IN_FLIGHT = frozenset({S.QUEUED, S.RUNNING, S.PAUSED, S.REDISPATCH, S.ASYNC_RUNNING})
"""Work that has been queued and not ended."""
STAGE_ENDINGS = frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.ASYNC_FAILED})
"""The ways started work ends; entering one stamps `end_time`."""
STAGE_TERMINAL = STAGE_ENDINGS | {S.SKIPPED, S.IGNORED, S.UNSELECTED}
"""Statuses a stage, job or step never leaves (except through an explicit retry)."""
STAGE_STARTED = frozenset({S.RUNNING, S.PAUSED, S.REDISPATCH, S.ASYNC_RUNNING})
"""Statuses that mean work has begun and not yet ended."""
STAGE_ACTIVE = STAGE_STARTED | {S.QUEUED}
"""A stage in one of these has started: its ready jobs may be queued."""
STAGE_SUCCESSFUL = frozenset(
    {S.COMPLETED, S.SKIPPED, S.UNSELECTED, S.ASYNC_RUNNING, S.ASYNC_FAILED}
)
"""Outcomes that let the next stage start (async jobs never hold a pipeline back)."""
STAGE_MOVING = frozenset({S.RUNNING, S.QUEUED, S.REDISPATCH, S.ASYNC_RUNNING})
"""A run with a stage in one of these is RUNNING."""
STAGE_HELD = frozenset({S.SUSPEND, S.INIT})
"""A run whose stages are all in these, one of them SUSPEND, waits for a concurrency slot."""
STAGE_RETRYABLE = frozenset({S.FAILED, S.CANCELED})
"""Jobs a retry runs again when asked for all failed work."""
STAGE_NOT_REACHED = frozenset({S.SKIPPED, S.CANCELED})
"""Later jobs that a retry resets because the retried work had kept them from running."""
STAGE_KEPT_BY_RETRY = frozenset({S.COMPLETED, S.UNSELECTED})
"""Stages a retry leaves as they are."""
STAGE_RESTARTABLE = STAGE_TERMINAL - {S.UNSELECTED, S.IGNORED}
"""What a retry may put back to INIT: whatever ended, but never unchosen or dropped work."""
STAGE_WAITING_FOR_AGENT = frozenset({S.QUEUED, S.REDISPATCH})
"""Jobs in the queue: an agent may claim them."""
STAGE_STEP_FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.SKIPPED})
"""How a job's steps may end; steps not in one when their job ends are closed with it."""
STAGE_CONDITION_SUCCEEDED = frozenset({S.COMPLETED, S.UNSELECTED})
"""What `success()` counts as a success of a job a condition depends on."""
STAGE_CONDITION_FAILED = frozenset({S.FAILED, S.ASYNC_FAILED})
"""What `failure()` counts as a failure of a job a condition depends on."""

JobOutcome = Literal["COMPLETED", "FAILED", "CANCELED"]
"""How an agent says a job or step ended (the wire values of three StageStatus members)."""
ASYNC_OUTCOMES = {"COMPLETED": S.COMPLETED, "FAILED": S.ASYNC_FAILED, "CANCELED": S.CANCELED}
"""The status an async job ends in for each outcome its agent reports."""
