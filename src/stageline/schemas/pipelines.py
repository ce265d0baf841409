"""Pipeline create/update/list bodies (PipelineDTO, ListPipelineQuery)."""

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from stageline.schemas.common import (
    MAX_INT32,
    MAX_LIST_ITEMS,
    CodeArtsId,
    FreeJson,
    Offset,
    RunStatusName,
    ShallowList,
    WireInput,
)

PipelineName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w\-\u4e00-\u9fff]+$")
]
GitType = Literal["codehub", "gitee", "github", "gitcode", "gitlab", "gitea"]
TriggerEventType = Literal["push", "merge_request", "tag_push", "issue", "note"]
PIPELINE_FILE = r"^[^/\x00-\x1f:\\][^\x00-\x1f:\\]*$"
"""A relative path inside a repository: no leading `/`, no control characters, `:` or `\\`
(`engine.sources` also refuses a `..` part)."""
BranchPattern = Annotated[str, StringConstraints(min_length=1, max_length=255)]
"""A branch name or an fnmatch glob (`release/*`)."""


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
    token_variable: Annotated[str, StringConstraints(max_length=128)] | None = None
    """Extension: the secret variable of the pipeline whose value is the token that reads the
    repository over https (sent as an Authorization header, never shown)."""
    pipeline_file: (
        Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=PIPELINE_FILE)]
        | None
    ) = None
    """Extension (pipelines as code): the path, in this repository, of a pipeline YAML file
    whose stages each run takes, read at the run's commit (`.stageline/pipeline.yaml`). Only
    the primary (first) code source's is used."""
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
    sequence: Annotated[int, Field(ge=0, le=MAX_INT32)] | None = None
    type: Literal["autoIncrement", "enum", "string"] = "string"
    value: Annotated[str, StringConstraints(max_length=8192)] = ""
    is_secret: bool = False
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    is_runtime: bool = False
    limits: Annotated[ShallowList, Field(max_length=1000)] = Field(default_factory=list)
    is_reset: bool = False
    latest_value: Annotated[str, StringConstraints(max_length=8192)] | None = None


class ConcurrencyControl(WireInput):
    concurrency_number: Annotated[int, Field(ge=0, le=MAX_INT32)] | None = None
    exceed_action: Literal["ABORT", "QUEUE"] | None = None
    enable: bool | None = None


class TriggerEventSetting(WireInput):
    type: TriggerEventType
    enable: bool
    branches: Annotated[list[BranchPattern], Field(max_length=MAX_LIST_ITEMS)] | None = None
    """push: the branches whose pushes start a run; merge_request: the target branches whose
    merge requests do. None or empty: every branch."""


class PipelineTrigger(WireInput):
    """A repository whose webhook deliveries start runs (`PipelineTrigger`). `hook_id`,
    `security_token` and `callback_url` are the server's: sent back as ShowPipelineDetail
    showed them, they keep the hook as it is."""

    git_url: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    git_type: GitType | None = None
    events: Annotated[list[TriggerEventSetting], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=list
    )
    hook_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    security_token: Annotated[str, StringConstraints(max_length=256)] | None = None
    callback_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    is_auto_commit: bool | None = None
    repo_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    endpoint_id: Annotated[str, StringConstraints(max_length=128)] | None = None


class PipelineCreate(WireInput):
    """PipelineDTO: the body of CreatePipelineNew and UpdatePipelineInfo."""

    name: PipelineName
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    is_publish: bool
    definition: Annotated[str, StringConstraints(min_length=1)]
    """The stages as a JSON string; an empty one can never be a definition."""
    sources: Annotated[list[CodeSource], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=list
    )
    variables: Annotated[list[CustomVariable], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=list
    )
    schedules: Annotated[list[FreeJson], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=list
    )
    triggers: Annotated[list[PipelineTrigger], Field(max_length=MAX_LIST_ITEMS)] = Field(
        default_factory=list
    )
    manifest_version: str = "3.0"
    group_id: CodeArtsId | None = None
    concurrency_control: ConcurrencyControl | None = None
    yaml_content: str | None = None
    """Pipelines as code: the whole pipeline as YAML (README, "Pipelines as code"). Read only
    when `definition` is left out: then it gives every field it describes, and the others may
    be left out too; its secret variables keep their stored values."""
    yaml_definition: str | None = None
    """Pipelines as code: the stages as YAML (a `stages:` document), read only when
    `definition` is left out."""

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        """Read `yaml_content` / `yaml_definition` into the v5 fields. A YAML error becomes a
        validation error whose message names the YAML's line and column."""
        if not isinstance(data, dict):
            return data
        content, definition = data.get("yaml_content"), data.get("yaml_definition")
        if data.get("definition") or (
            not isinstance(content, str) and not isinstance(definition, str)
        ):
            # With `definition` the v5 fields rule: a detail read, changed and sent back
            # carries the YAML as it was read, which must not undo the change.
            return data
        # imported here: the YAML form is built on these very models
        from stageline.schemas.pipeline_yaml import (
            KEEP_SECRET,
            definition_from_yaml,
            pipeline_from_yaml,
        )
        from stageline.schemas.yaml_source import InvalidYaml

        data = dict(data)
        try:
            if isinstance(content, str):
                fields = pipeline_from_yaml(content)
                for variable in fields["variables"]:
                    if variable["is_secret"]:
                        variable["value"] = KEEP_SECRET
                data.update(fields)
            if isinstance(definition, str):
                data["definition"] = definition_from_yaml(definition)
        except InvalidYaml as error:
            raise PydanticCustomError("yaml", "{message}", {"message": error.message}) from None
        return data


SortKey = Literal["name", "create_time", "update_time"]
SortDir = Literal["asc", "desc"]


class PipelineListQuery(WireInput):
    """ListPipelineQuery; filters this implementation does not know are accepted and ignored."""

    name: str | None = None
    status: Annotated[list[RunStatusName], Field(max_length=MAX_LIST_ITEMS)] | None = None
    is_publish: bool | None = None
    creator_ids: Annotated[list[str], Field(max_length=MAX_LIST_ITEMS)] | None = None
    executor_ids: Annotated[list[str], Field(max_length=MAX_LIST_ITEMS)] | None = None
    offset: Offset = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    sort_key: SortKey = "create_time"
    sort_dir: SortDir = "desc"
