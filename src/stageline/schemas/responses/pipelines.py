"""Pipelines as ShowPipelineDetail and ListPipelines answer them, and `{"pipeline_id"}`."""

from typing import Any

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import DOCUMENTED
from stageline.schemas.responses.latest_run import PipelineLatestRun


class PipelineRef(TypedDict):
    """CreatePipelineNew, UpdatePipelineInfo and DeletePipeline: the pipeline concerned."""

    pipeline_id: str


class PipelineSourceParams(TypedDict, total=False):
    """A source's parameters as they were given; unset ones are absent."""

    git_type: str
    codehub_id: str
    endpoint_id: str
    default_branch: str
    git_url: str
    ssh_git_url: str
    web_url: str
    repo_name: str
    alias: str
    token_variable: str
    """Extension: the secret variable that holds the repository's token."""
    pipeline_file: str
    """Extension: the pipeline YAML file in the repository whose stages each run takes."""
    artifact_type: str
    branch_filter: str
    organization: str
    package_name: str
    version: str
    version_strategy: str


@with_config(DOCUMENTED)
class PipelineSource(TypedDict):
    type: str
    """`code` or `artifact`."""
    params: PipelineSourceParams


@with_config(DOCUMENTED)
class PipelineVariable(TypedDict):
    name: str
    sequence: int
    type: str
    """`autoIncrement`, `enum` or `string`."""
    value: str
    """Shown as `******` for a secret variable that has a value."""
    is_secret: bool
    description: str
    is_runtime: bool
    limits: list[Any]
    is_reset: bool
    latest_value: str | None


class PipelineConcurrency(TypedDict, total=False):
    """`concurrency_control` as it was given; unset keys are absent."""

    concurrency_number: int
    exceed_action: str
    enable: bool


@with_config(DOCUMENTED)
class PipelineDetail(TypedDict):
    """ShowPipelineDetail."""

    id: str
    name: str
    description: str
    manifest_version: str
    region: None
    domain_id: None
    project_id: str
    project_name: str
    component_id: None
    is_publish: bool
    creator_id: str
    creator_name: str
    updater_id: str
    create_time: int
    """Epoch milliseconds."""
    update_time: int
    """Epoch milliseconds."""
    is_collect: bool
    sources: list[PipelineSource]
    variables: list[PipelineVariable]
    schedules: list[dict[str, Any]]
    """As given, each with a server-assigned `uuid`."""
    triggers: list[dict[str, Any]]
    """As given, each with the server's `hook_id`, `callback_url` (where the forge sends its
    webhook) and `security_token` (the webhook's secret; `******` unless the caller is an admin
    of the project)."""
    group_id: str | None
    definition: str
    """The stages, jobs and steps as a JSON-encoded string."""
    concurrency_control: PipelineConcurrency | None
    yaml_content: str
    """Pipelines as code: the whole pipeline as YAML (secret values left out)."""
    yaml_definition: str
    """Pipelines as code: the stages as YAML (`definition` in its YAML form)."""
    deleted: bool
    banned: bool
    subject_id: str
    modify_url: str
    detail_url: str


@with_config(DOCUMENTED)
class PipelineItem(TypedDict):
    """An element of ListPipelines' `pipelines`."""

    pipeline_id: str
    name: str
    project_id: str
    project_name: str
    component_id: None
    is_publish: bool
    is_collect: bool
    manifest_version: str
    create_time: int
    """Epoch milliseconds."""
    latest_run: PipelineLatestRun | None
    """Null for a pipeline that never ran."""
    convert_sign: int
    banned: bool
    description: str
    tag_list: list[dict[str, Any]]
    """Always empty: pipelines have no tags here."""


@with_config(DOCUMENTED)
class PipelineList(TypedDict):
    """ListPipelines."""

    offset: int
    limit: int
    total: int
    current_system_time: int
    """Epoch milliseconds."""
    pipelines: list[PipelineItem]
