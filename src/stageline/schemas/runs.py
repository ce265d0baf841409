"""RunPipelineDTO, ListPipelineRunsQuery and LogQuery."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from stageline.schemas.common import (
    MAX_CHOICES,
    MAX_LIST_ITEMS,
    Offset,
    RunStatusName,
    WireInput,
)
from stageline.schemas.pipelines import GitType

TriggerFilter = Literal[
    "Manual",
    "Scheduler",
    "MR",
    "Push",
    "CreateTag",
    "Issue",
    "Note",
    "RollBack",
    "CR",
    "Generic",
    "SubPipeline",
]


class RunBuildParams(WireInput):
    build_type: Literal["branch", "tag"]
    event_type: str | None = None
    target_branch: str | None = None
    tag: str | None = None
    # Extensions (not in the SDK model): what a caller that already knows the commit can pass.
    commit_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{7,64}$")] | None = None
    message: Annotated[str, StringConstraints(max_length=65_536)] | None = None


class RunSourceParams(WireInput):
    git_type: GitType | None = None
    """Required by the reference; optional here, as it is in a pipeline's own code sources
    (the YAML form leaves it out), so that a run may name any source its pipeline may."""
    git_url: str
    alias: str | None = None
    codehub_id: str | None = None
    default_branch: str | None = None
    endpoint_id: str | None = None
    change_request_ids: Annotated[list[str], Field(max_length=MAX_LIST_ITEMS)] | None = None
    build_params: RunBuildParams | None = None


class RunSource(WireInput):
    type: Literal["code", "artifact"]
    params: RunSourceParams


class RunVariable(WireInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    value: Annotated[str, StringConstraints(max_length=8192)]


class RunCreate(WireInput):
    """RunPipelineDTO; every field optional, as is the whole body."""

    sources: Annotated[list[RunSource], Field(max_length=MAX_LIST_ITEMS)] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    variables: Annotated[list[RunVariable], Field(max_length=MAX_LIST_ITEMS)] | None = None
    choose_jobs: Annotated[list[str], Field(max_length=MAX_CHOICES)] | None = None
    choose_stages: Annotated[list[str], Field(max_length=MAX_CHOICES)] | None = None
    sub_hook: bool | None = None
    execution_plan_id: str | None = None


class RunListQuery(WireInput):
    status: Annotated[list[RunStatusName], Field(max_length=MAX_LIST_ITEMS)] | None = None
    trigger_type: Annotated[list[TriggerFilter], Field(max_length=MAX_LIST_ITEMS)] | None = None
    executor_ids: Annotated[list[str], Field(max_length=MAX_LIST_ITEMS)] | None = None
    offset: Offset = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    sort_key: Literal["start_time", "update_time"] = "start_time"
    sort_dir: Literal["asc", "desc"] = "desc"


class LogQuery(WireInput):
    limit: Annotated[int, Field(ge=1, le=10000)]
    sort: Literal["asc", "desc"]
    start_offset: Offset | None = None
    end_offset: Offset | None = None
    offset: Offset | None = None
    level: str | None = None


class RunRetry(WireInput):
    """RetryPipelineRun's optional body; `repo_https_url` is accepted and not used."""

    repo_https_url: str | None = None
    job_run_ids: Annotated[list[str], Field(max_length=MAX_CHOICES)] | None = None
