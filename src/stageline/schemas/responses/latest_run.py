"""PipelineLatestRun: a run as batch status, ListPipelines and ListPipelineRuns show it
(codearts-v5-api.md §1 and §5). One shape for the three, as the SDK has one model for it."""

from typing import NotRequired

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import (
    DOCUMENTED,
    RunStatusText,
    StageStatusText,
    TriggerText,
)


@with_config(DOCUMENTED)
class LatestRunStage(TypedDict):
    """An element of `stage_status_list` (the SDK's PipelineLatestRunStageStatusList)."""

    id: NotRequired[str]
    """The stage run's ID: in ListPipelines and ListPipelineRuns, never in batch status."""
    name: str
    sequence: int
    """0 for the first stage."""
    status: StageStatusText
    start_time: str | None
    """`YYYY-MM-DD HH:MM:SS` in the server's display time zone; null until the stage starts."""
    end_time: str | None
    """As `start_time`; null until the stage ends."""


class BuildParams(TypedDict):
    """The code source of the run; every key is always present, null when it does not apply."""

    action: str | None
    build_type: str | None
    commit_id: str | None
    event_type: str | None
    merge_id: str | None
    message: str | None
    source_branch: str | None
    tag: str | None
    target_branch: str | None
    codehub_id: str | None
    git_url: str | None
    source_codehub_id: str | None
    source_codehub_url: str | None
    source_codehub_http_url: str | None


class ArtifactParams(TypedDict):
    """The artifact source of the run; null for a run of code."""

    version: str | None
    branch_filter: str | None
    package_name: str | None
    organization: str | None


@with_config(DOCUMENTED)
class PipelineLatestRun(TypedDict):
    """A pipeline and its latest run: the 14 keys of the SDK's PipelineLatestRun."""

    pipeline_id: str
    pipeline_run_id: str
    executor_id: str
    executor_name: str
    stage_status_list: list[LatestRunStage]
    status: RunStatusText
    run_number: int
    trigger_type: TriggerText
    build_params: BuildParams | None
    artifact_params: ArtifactParams | None
    start_time: int
    """Epoch milliseconds."""
    end_time: int | None
    """Epoch milliseconds; null while the run is unfinished."""
    modify_url: str
    detail_url: str
