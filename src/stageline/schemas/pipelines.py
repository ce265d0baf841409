"""Pipeline create/update/list bodies (PipelineDTO, ListPipelineQuery)."""

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from stageline.schemas.common import CodeArtsId, RunStatusName, WireInput

PipelineName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w\-\u4e00-\u9fff]+$")
]
GitType = Literal["codehub", "gitee", "github", "gitcode", "gitlab"]


class CodeSourceParams(WireInput):
    git_type: GitType | None = None
    codehub_id: str | None = None
    endpoint_id: str | None = None
    default_branch: str | None = None
    git_url: str | None = None
    ssh_git_url: str | None = None
    web_url: str | None = None
    repo_name: str | None = None
    alias: Annotated[str, StringConstraints(max_length=128, pattern=r"^\w*$")] | None = None
    # artifact sources
    artifact_type: Literal["generic", "docker"] | None = None
    branch_filter: str | None = None
    organization: str | None = None
    package_name: str | None = None
    version: str | None = None
    version_strategy: Literal["latest", "specificVersion"] | None = None


class CodeSource(WireInput):
    type: Literal["code", "artifact"]
    params: CodeSourceParams = Field(default_factory=CodeSourceParams)


class CustomVariable(WireInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\w+$")]
    sequence: int | None = None
    type: Literal["autoIncrement", "enum", "string"] = "string"
    value: Annotated[str, StringConstraints(max_length=8192)] = ""
    is_secret: bool = False
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    is_runtime: bool = False
    limits: list[Any] = Field(default_factory=list)
    is_reset: bool = False
    latest_value: Annotated[str, StringConstraints(max_length=8192)] | None = None


class ConcurrencyControl(WireInput):
    concurrency_number: int | None = None
    exceed_action: Literal["ABORT", "QUEUE"] | None = None
    enable: bool | None = None


class PipelineCreate(WireInput):
    """PipelineDTO: the body of CreatePipelineNew and UpdatePipelineInfo."""

    name: PipelineName
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    is_publish: bool
    definition: str
    sources: list[CodeSource] = Field(default_factory=list)
    variables: list[CustomVariable] = Field(default_factory=list)
    schedules: list[dict[str, Any]] = Field(default_factory=list)
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    manifest_version: str = "3.0"
    group_id: CodeArtsId | None = None
    concurrency_control: ConcurrencyControl | None = None


SortKey = Literal["name", "create_time", "update_time"]
SortDir = Literal["asc", "desc"]


class PipelineListQuery(WireInput):
    """ListPipelineQuery; filters this implementation does not know are accepted and ignored."""

    name: str | None = None
    status: list[RunStatusName] | None = None
    is_publish: bool | None = None
    creator_ids: list[str] | None = None
    executor_ids: list[str] | None = None
    offset: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    sort_key: SortKey = "create_time"
    sort_dir: SortDir = "desc"
