"""Stored rows as the v5 wire shapes: PipelineLatestRun, pipeline detail, run detail.

One renderer per shape, shared by every endpoint that returns it (batch status, the lists'
`latest_run` and `pipeline_runs`), as codearts-v5-api.md §5 asks.
"""

from datetime import datetime, tzinfo
from typing import Any, Protocol, cast

from stageline.schemas.pipeline_document import dump_document, pipeline_to_yaml, stages_doc
from stageline.schemas.responses.latest_run import (
    ArtifactParams,
    BuildParams,
    LatestRunStage,
    PipelineLatestRun,
)
from stageline.schemas.responses.pipelines import (
    PipelineConcurrency,
    PipelineDetail,
    PipelineItem,
    PipelineVariable,
)
from stageline.schemas.responses.runs import (
    RunDetail,
    RunDetailJob,
    RunDetailStage,
    RunDetailStep,
)
from stageline.store.tables import Artifact, JobRun, Pipeline, PipelineRun, StageRun, StepRun

STAGE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class LatestRunSource(Protocol):
    """What a PipelineLatestRun is rendered from: a PipelineRun, or a row of its columns."""

    id: str
    pipeline_id: str
    project_id: str
    executor_id: str
    executor_name: str
    stage_summary: list[Any]
    status: str
    run_number: int
    trigger_type: str
    build_params: dict[str, Any] | None
    artifact_params: dict[str, Any] | None
    start_time: int
    end_time: int | None


SECRET_MASK = "******"
"""Shown instead of a secret variable's value; sent back unchanged, it keeps the stored one."""


def masked_variable(variable: PipelineVariable) -> PipelineVariable:
    if not variable.get("is_secret") or not variable.get("value"):
        return variable
    return {**variable, "value": SECRET_MASK}


def artifact_package_type(name: str) -> str:
    """The file's extension (`jar`, `gz`), which is what CodeArts shows as the package type."""
    filename = name.rpartition("/")[2]
    return filename.rpartition(".")[2] if "." in filename else ""


class Renderer:
    """Knows the display time zone and the public base URL; everything else comes from rows."""

    def __init__(self, *, display_tz: tzinfo, public_base_url: str) -> None:
        self.display_tz = display_tz
        self.base_url = public_base_url.rstrip("/")

    def stage_time(self, epoch_ms: int | None) -> str | None:
        if epoch_ms is None:
            return None
        return datetime.fromtimestamp(epoch_ms // 1000, tz=self.display_tz).strftime(
            STAGE_TIME_FORMAT
        )

    def pipeline_url(self, project_id: str, pipeline_id: str) -> str:
        return f"{self.base_url}/projects/{project_id}/pipelines/{pipeline_id}"

    def modify_url(self, project_id: str, pipeline_id: str) -> str:
        return f"{self.pipeline_url(project_id, pipeline_id)}/edit"

    def artifact_url(self, run: PipelineRun, artifact: Artifact) -> str:
        return (
            f"{self.base_url}/v5/{run.project_id}/api/pipelines/{run.pipeline_id}"
            f"/pipeline-runs/{run.id}/artifacts/{artifact.id}/download"
        )

    def detail_url(self, project_id: str, pipeline_id: str, run_id: str) -> str:
        return f"{self.pipeline_url(project_id, pipeline_id)}/runs/{run_id}"

    def latest_run(
        self, run: LatestRunSource, *, include_stage_id: bool = False
    ) -> PipelineLatestRun:
        """The 14 keys of PipelineLatestRun, from the run row alone (its stage summary)."""
        stages: list[LatestRunStage] = []
        for stage in run.stage_summary:
            item: LatestRunStage = {
                "name": stage["name"],
                "sequence": stage["sequence"],
                "status": stage["status"],
                "start_time": self.stage_time(stage["start_time"]),
                "end_time": self.stage_time(stage["end_time"]),
            }
            if include_stage_id:
                item = {"id": stage["id"], **item}
            stages.append(item)
        return {
            "pipeline_id": run.pipeline_id,
            "pipeline_run_id": run.id,
            "executor_id": run.executor_id,
            "executor_name": run.executor_name,
            "stage_status_list": stages,
            "status": run.status,
            "run_number": run.run_number,
            "trigger_type": run.trigger_type,
            # Stored by the scheduler with exactly these keys (engine.scheduler).
            "build_params": cast(BuildParams | None, run.build_params),
            "artifact_params": cast(ArtifactParams | None, run.artifact_params),
            "start_time": run.start_time,
            "end_time": run.end_time,
            "modify_url": self.modify_url(run.project_id, run.pipeline_id),
            "detail_url": self.detail_url(run.project_id, run.pipeline_id, run.id),
        }

    def callback_url(self, hook_id: str) -> str:
        """Where a trigger's forge sends its webhook deliveries."""
        return f"{self.base_url}/webhooks/{hook_id}"

    def trigger(self, trigger: dict[str, Any], pipeline_id: str) -> dict[str, Any]:
        """A stored trigger as shown: its pipeline and, when it has a hook, the callback URL."""
        shown = {**trigger, "pipeline_id": pipeline_id}
        if isinstance(trigger.get("hook_id"), str):
            shown["callback_url"] = self.callback_url(trigger["hook_id"])
        return shown

    def pipeline(
        self,
        pipeline: Pipeline,
        *,
        project_name: str,
        creator_name: str,
        triggers: list[dict[str, Any]],
    ) -> PipelineDetail:
        """`triggers`: the pipeline's, with their secrets opened or masked for this caller."""
        # Stored as PipelineCreate's `concurrency_control.model_dump(exclude_none=True)`.
        concurrency = cast(PipelineConcurrency | None, pipeline.concurrency_control)
        detail: PipelineDetail = {
            "id": pipeline.id,
            "name": pipeline.name,
            "description": pipeline.description,
            "manifest_version": pipeline.manifest_version,
            "region": None,
            "domain_id": None,
            "project_id": pipeline.project_id,
            "project_name": project_name,
            "component_id": None,
            "is_publish": pipeline.is_publish,
            "creator_id": pipeline.creator_id,
            "creator_name": creator_name,
            "updater_id": pipeline.updater_id,
            "create_time": pipeline.created_at,
            "update_time": pipeline.updated_at,
            "is_collect": False,
            "sources": pipeline.sources,
            "variables": [masked_variable(v) for v in pipeline.variables],
            "schedules": pipeline.schedules,
            "triggers": [self.trigger(t, pipeline.id) for t in triggers],
            "group_id": pipeline.group_id,
            "definition": pipeline.definition,
            "concurrency_control": concurrency,
            "yaml_content": "",
            "yaml_definition": dump_document({"stages": stages_doc(pipeline.definition)}),
            "deleted": False,
            "banned": False,
            "subject_id": pipeline.id,
            "modify_url": self.modify_url(pipeline.project_id, pipeline.id),
            "detail_url": self.pipeline_url(pipeline.project_id, pipeline.id),
        }
        detail["yaml_content"] = pipeline_to_yaml(detail)
        return detail

    def pipeline_item(
        self, pipeline: Pipeline, latest: PipelineRun | None, *, project_name: str
    ) -> PipelineItem:
        """An element of ListPipelines' `pipelines`."""
        return {
            "pipeline_id": pipeline.id,
            "name": pipeline.name,
            "project_id": pipeline.project_id,
            "project_name": project_name,
            "component_id": None,
            "is_publish": pipeline.is_publish,
            "is_collect": False,
            "manifest_version": pipeline.manifest_version,
            "create_time": pipeline.created_at,
            "latest_run": self.latest_run(latest, include_stage_id=True) if latest else None,
            "convert_sign": 0,
            "banned": False,
            "description": pipeline.description,
            "tag_list": [],
        }

    def run_detail(
        self,
        pipeline: Pipeline,
        run: PipelineRun,
        stages: list[StageRun],
        jobs: list[JobRun],
        steps: list[StepRun],
        artifacts: list[Artifact],
        *,
        now: int,
    ) -> RunDetail:
        """ShowPipelineRunDetail: the run with stages → jobs → steps and their statuses."""

        def step_item(step: StepRun) -> RunDetailStep:
            return {
                "id": step.id,
                "name": step.name,
                "task": step.task,
                "business_type": step.business_type,
                "inputs": step.inputs,
                "sequence": step.sequence,
                "official_task_version": step.official_task_version,
                "identifier": step.identifier,
                "multi_step_editable": 0,
                "endpoint_ids": [],
                "last_dispatch_id": None,
                "status": step.status,
                "message": step.message,
                "start_time": step.start_time,
                "end_time": step.end_time,
                "daily_build_number": None,
            }

        def job_item(job: JobRun) -> RunDetailJob:
            return {
                "id": job.id,
                "category": None,
                "sequence": job.sequence,
                "async": "true" if job.is_async else "false",
                "name": job.name,
                "identifier": job.identifier,
                "depends_on": job.depends_on,
                "condition": job.condition,
                "resource": job.resource,
                "is_select": job.is_select,
                "timeout": job.timeout,
                "last_dispatch_id": job.dispatch_id,
                "status": job.status,
                "message": job.message,
                "start_time": job.start_time,
                "end_time": job.end_time,
                "steps": [step_item(s) for s in steps if s.job_run_id == job.id],
                "exec_id": job.claimed_by,
            }

        def stage_item(stage: StageRun) -> RunDetailStage:
            own = [s for s in steps if s.stage_run_id == stage.id]
            return {
                "id": stage.id,
                "category": None,
                "name": stage.name,
                "identifier": stage.identifier,
                "run_always": stage.run_always,
                "parallel": None,
                "is_select": stage.is_select,
                "sequence": stage.sequence,
                "depends_on": stage.depends_on,
                "condition": None,
                "status": stage.status,
                "start_time": stage.start_time,
                "end_time": stage.end_time,
                "pause_time": 0,
                "pre": [step_item(s) for s in own if s.placement == "pre"],
                "post": [step_item(s) for s in own if s.placement == "post"],
                "jobs": [job_item(j) for j in jobs if j.stage_run_id == stage.id],
            }

        return {
            "id": run.id,
            "pipeline_id": pipeline.id,
            "name": pipeline.name,
            "description": run.description,
            "manifest_version": pipeline.manifest_version,
            "is_publish": pipeline.is_publish,
            "executor_id": run.executor_id,
            "executor_name": run.executor_name,
            "status": run.status,
            "trigger_type": run.trigger_type,
            "run_number": run.run_number,
            "message": run.message,
            "pause_time": 0,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "stages": [stage_item(s) for s in stages],
            "domain_id": None,
            "project_id": run.project_id,
            "region": None,
            "component_id": None,
            "language": "en-us",
            "sources": run.sources,
            "artifacts": [
                {
                    "name": artifact.name,
                    "packageType": artifact_package_type(artifact.name),
                    "version": str(run.run_number),
                    "downloadUrl": self.artifact_url(run, artifact),
                }
                for artifact in artifacts
            ],
            "subject_id": run.id,
            "group_id": pipeline.group_id,
            "group_name": None,
            "detail_url": self.detail_url(run.project_id, pipeline.id, run.id),
            "current_system_time": now,
        }
