"""RunPipelineDTO, ListPipelineRunsQuery and LogQuery."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from stageline.schemas.common import RunStatusName, WireInput
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
    commit_id: str | None = None
    message: str | None = None


class RunSourceParams(WireInput):
    git_type: GitType
    git_url: str
    alias: str | None = None
    codehub_id: str | None = None
    default_branch: str | None = None
    endpoint_id: str | None = None
    change_request_ids: list[str] | None = None
    build_params: RunBuildParams | None = None


class RunSource(WireInput):
    type: Literal["code", "artifact"]
    params: RunSourceParams


class RunVariable(WireInput):
    name: Annotated[str, StringConstraints(min_length=1)]
    value: Annotated[str, StringConstraints(max_length=8192)]


class RunCreate(WireInput):
    """RunPipelineDTO; every field optional, as is the whole body."""

    sources: list[RunSource] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    variables: list[RunVariable] | None = None
    choose_jobs: list[str] | None = None
    choose_stages: list[str] | None = None
    sub_hook: bool | None = None
    execution_plan_id: str | None = None


class RunListQuery(WireInput):
    status: list[RunStatusName] | None = None
    trigger_type: list[TriggerFilter] | None = None
    executor_ids: list[str] | None = None
    offset: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    sort_key: Literal["start_time", "update_time"] = "start_time"
    sort_dir: Literal["asc", "desc"] = "desc"


class LogQuery(WireInput):
    limit: Annotated[int, Field(ge=1, le=10000)]
    sort: Literal["asc", "desc"]
    start_offset: Annotated[int, Field(ge=0)] | None = None
    end_offset: Annotated[int, Field(ge=0)] | None = None
    offset: int | None = None
    level: str | None = None


class RunRetry(WireInput):
    """RetryPipelineRun's optional body; `repo_https_url` is accepted and not used."""

    repo_https_url: str | None = None
    job_run_ids: list[str] | None = None
