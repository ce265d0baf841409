"""Runs: ShowPipelineRunDetail (stages → jobs → steps), ListPipelineRuns, ShowPipelineLog,
ShowStepOutputs, ShowPipelineArtifacts, and the acknowledgements of run commands."""

from typing import Any, Literal

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import (
    DOCUMENTED,
    RunStatusText,
    StageStatusText,
    TriggerText,
)
from stageline.schemas.responses.latest_run import PipelineLatestRun


class RunStarted(TypedDict):
    """RunPipeline: the new run."""

    pipeline_run_id: str


class Success(TypedDict):
    """StopPipelineRun, RetryPipelineRun and the review decisions; failures are error answers."""

    success: bool


class StepInput(TypedDict):
    key: str
    value: Any


@with_config(DOCUMENTED)
class RunDetailStep(TypedDict):
    """A step of a job, or a stage's entry (`pre`) or exit (`post`) step."""

    id: str
    """The step run ID (`step_run_id`)."""
    name: str
    task: str
    """The plugin, e.g. `official_shell_plugin` or `official_devcloud_checkpoint`."""
    business_type: str
    inputs: list[StepInput]
    sequence: int
    official_task_version: str | None
    identifier: str
    multi_step_editable: int
    endpoint_ids: list[str]
    last_dispatch_id: None
    status: StageStatusText
    message: str | None
    start_time: int | None
    """Epoch milliseconds; null until the step starts."""
    end_time: int | None
    """Epoch milliseconds; null until the step ends."""
    daily_build_number: None


RunDetailJob = TypedDict(
    "RunDetailJob",
    {
        "id": str,
        "category": None,
        "sequence": int,
        "async": Literal["true", "false"],
        "name": str,
        "identifier": str,
        "depends_on": list[str],
        "condition": str | None,
        "resource": str | None,
        "is_select": bool,
        "timeout": str | None,
        "last_dispatch_id": str | None,
        "status": StageStatusText,
        "message": str | None,
        "start_time": int | None,
        "end_time": int | None,
        "steps": list[RunDetailStep],
        "exec_id": str | None,
    },
)
"""A job of a stage; `id` is the job run ID. (Functional form: `async` is a Python keyword.)"""


@with_config(DOCUMENTED)
class RunDetailStage(TypedDict):
    id: str
    category: None
    name: str
    identifier: str
    run_always: bool
    parallel: None
    is_select: bool
    sequence: int
    depends_on: list[str]
    """Identifiers of the stages this one waits for."""
    condition: None
    status: StageStatusText
    start_time: int | None
    """Epoch milliseconds; null until the stage starts."""
    end_time: int | None
    """Epoch milliseconds; null until the stage ends."""
    pause_time: int
    pre: list[RunDetailStep]
    """Entry steps, e.g. a manual checkpoint."""
    post: list[RunDetailStep]
    jobs: list[RunDetailJob]


class RunArtifactLink(TypedDict):
    """An element of a run detail's `artifacts` (camelCase keys, as the SDK declares them)."""

    name: str
    packageType: str
    version: str
    downloadUrl: str


@with_config(DOCUMENTED)
class RunDetail(TypedDict):
    """ShowPipelineRunDetail."""

    id: str
    pipeline_id: str
    name: str
    """The pipeline's name."""
    description: str
    manifest_version: str
    is_publish: bool
    executor_id: str
    executor_name: str
    status: RunStatusText
    trigger_type: TriggerText
    run_number: int
    message: str | None
    pause_time: int
    start_time: int
    """Epoch milliseconds."""
    end_time: int | None
    """Epoch milliseconds; null while the run is unfinished."""
    stages: list[RunDetailStage]
    domain_id: None
    project_id: str
    region: None
    component_id: None
    language: str
    sources: list[dict[str, Any]]
    """The run's sources as RunPipeline named them, else the pipeline's."""
    artifacts: list[RunArtifactLink]
    subject_id: str
    group_id: str | None
    group_name: None
    detail_url: str
    current_system_time: int
    """Epoch milliseconds."""


@with_config(DOCUMENTED)
class RunList(TypedDict):
    """ListPipelineRuns."""

    offset: int
    limit: int
    total: int
    pipeline_runs: list[PipelineLatestRun]
    """Each with its stages' `id`."""


@with_config(DOCUMENTED)
class LogWindow(TypedDict):
    """ShowPipelineLog: a window of a step's log lines."""

    has_more: bool
    """True while lines exist past the window or the step still runs."""
    start_offset: str
    """Line number of the window's first line."""
    end_offset: str
    """Line number after the window's last line: where to go on from."""
    log: str
    """The lines, each ending with a newline."""
    step_run_id: str


class OutputResult(TypedDict):
    key: str
    value: str


class StepOutput(TypedDict):
    step_run_id: str
    output_result: list[OutputResult]


@with_config(DOCUMENTED)
class StepOutputs(TypedDict):
    """ShowStepOutputs: the `key=value` outputs of the steps asked for, in the order asked."""

    step_outputs: list[StepOutput]
    current_system_time: int
    """Epoch milliseconds."""


class HashCode(TypedDict):
    hash_type: str
    hash_value: str


class PipelineArtifact(TypedDict):
    """An element of ShowPipelineArtifacts' `artifacts`; every field a string, as the SDK has it."""

    project_id: str
    name: str
    artifact_version: str
    upload_target: str
    artifact_package_type: str
    artifact_uri: str
    artifact_download_url_with_id: str
    artifact_type: str
    job_id: str
    build_no: str
    daily_build_number: str
    file_size: str
    hash_code: list[HashCode]


class PipelineArtifacts(TypedDict):
    """ShowPipelineArtifacts."""

    artifacts: list[PipelineArtifact]
