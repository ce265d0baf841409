"""Turn a pipeline and a run request into the rows of a new run: run, stages, jobs, steps.

Resolves what the run is built from (variables, sources, build and artifact params, selected
stages and jobs) and refuses requests that name things the pipeline does not have.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stageline.auth.vault import Vault
from stageline.domain.build_params import BUILD_PARAM_KEYS
from stageline.domain.errors import InvalidInput, excerpt
from stageline.domain.pipeline import PipelineSpec, StepSpec, parse_definition, parse_resource
from stageline.domain.statuses import RunStatus, StageStatus, TriggerType
from stageline.domain.variables import reserved, reserved_problem
from stageline.engine.sources import (
    PIPELINE_FILE,
    PIPELINE_FILE_COMMIT,
    PipelineFile,
    code_sources,
    run_sources,
    source_problem,
)
from stageline.engine.variables import resealed, sealed
from stageline.schemas.feed_filters import BRANCH_MAX_CHARS
from stageline.schemas.runs import RunCreate, RunSource
from stageline.store.ids import new_id
from stageline.store.tables import JobRun, Pipeline, PipelineRun, StageRun, StepRun

ARTIFACT_PARAM_KEYS = ("version", "branch_filter", "package_name", "organization")
NO_STAGES = '{"stages":[]}'
"""The definition of a run whose pipeline file could not be used: it runs nothing."""


@dataclass(frozen=True)
class Executor:
    """Who starts a run: `executor_id` / `executor_name` on the wire."""

    user_id: str
    display_name: str


@dataclass(frozen=True)
class RunOrigin:
    """What a new run builds: its build params and its sources, planned from the pipeline's
    `pipeline_sources`; the commits in them once resolved (`engine.sources`)."""

    build_params: dict[str, Any]
    sources: list[dict[str, Any]]
    pipeline_sources: list[dict[str, Any]]
    pipeline_file: PipelineFile | None = None
    """Pipelines as code: the file the run takes its stages from, read at its commit."""

    def resolved(self, sources: list[dict[str, Any]]) -> "RunOrigin":
        """This origin with `sources` resolved; the primary code source's commit and its
        message become the run's."""
        params = dict(self.build_params)
        primary = next(iter(code_sources(sources)), None)
        if primary is not None:
            chosen = primary["params"].get("build_params") or {}
            params["commit_id"] = chosen.get("commit_id")
            params["message"] = chosen.get("message")
        return RunOrigin(params, sources, self.pipeline_sources, self.pipeline_file)

    def with_file(self, pipeline_file: PipelineFile) -> "RunOrigin":
        """This origin taking its stages from `pipeline_file`, which the primary code source
        records (path and commit)."""
        sources = [dict(s) for s in self.sources]
        primary = next(iter(code_sources(sources)), None)
        if primary is not None:
            primary["params"] = {
                **primary["params"],
                PIPELINE_FILE: pipeline_file.path,
                PIPELINE_FILE_COMMIT: pipeline_file.commit,
            }
        return replace(self, sources=sources, pipeline_file=pipeline_file)


def run_origin(
    pipeline: Pipeline,
    request: RunCreate,
    trigger: TriggerType,
    event_params: Mapping[str, str | None] | None,
) -> RunOrigin:
    """The run's build params and sources as the pipeline, the request and the trigger's event
    name them, before any repository is asked."""
    given = request.sources or []
    problem = source_problem([s.model_dump() for s in given], [])
    if problem is not None:
        raise InvalidInput(problem)
    build_params = _build_params(pipeline.sources, given, trigger, event_params)
    sources = run_sources(pipeline.sources, given, build_params)
    return RunOrigin(build_params, sources, pipeline.sources)


@dataclass
class RunTree:
    run: PipelineRun
    stages: list[StageRun]
    jobs: list[JobRun]
    steps: list[StepRun]
    problem: str | None = None
    """Why the run fails as soon as it is made (its pipeline file cannot be used)."""


def resolve_variables(
    declared: list[dict[str, Any]], request: RunCreate, vault: Vault | None
) -> list[dict[str, Any]]:
    """The pipeline's variables with this run's values; only `is_runtime` ones may be set.
    Secret values are stored sealed: those given now, and the pipeline's (sealed again if an
    earlier version stored them in clear)."""
    values = {v["name"]: dict(v) for v in declared}
    given_at = {given.name: index for index, given in enumerate(request.variables or [])}
    for position, name in enumerate(values):
        if reserved(name):  # declared before such names were refused: it must be renamed
            where = (
                f"variables[{given_at[name]}].name"
                if name in given_at
                else f"the pipeline's variables[{position}].name"
            )
            raise InvalidInput(
                f"{where}: {reserved_problem(name)}; rename the variable (UpdatePipelineInfo)"
            )
    given_now: set[str] = set()
    for index, given in enumerate(request.variables or []):
        variable = values.get(given.name)
        if variable is None:
            raise InvalidInput(f"variables[{index}].name: unknown variable '{excerpt(given.name)}'")
        if not variable.get("is_runtime"):
            raise InvalidInput(
                f"variables[{index}].name: variable '{given.name}' is not settable at run time"
                " (is_runtime is false)"
            )
        limits = variable.get("limits") or []
        if variable.get("type") == "enum" and limits and given.value not in limits:
            raise InvalidInput(
                f"variables[{index}].value: '{excerpt(given.value)}'"
                f" is not one of {excerpt(limits, 256)}"
            )
        variable["value"] = given.value
        given_now.add(given.name)
    resolved = []
    for v in values.values():
        entry = {
            "name": v["name"],
            "value": v.get("value") or "",
            "is_secret": bool(v.get("is_secret")),
        }
        # A value given now is in clear; a stored one is sealed (or in clear from long ago).
        resolved.append(sealed(entry, vault) if v["name"] in given_now else resealed(entry, vault))
    return resolved


def _build_params(
    pipeline_sources: list[dict[str, Any]],
    run_sources: list[RunSource],
    trigger: TriggerType,
    event_params: Mapping[str, str | None] | None,
) -> dict[str, Any]:
    """The run's `build_params`: the pipeline's code source, then what the run request
    overrides, then what a trigger's event (a push, a merge request…) names."""
    params: dict[str, Any] = dict.fromkeys(BUILD_PARAM_KEYS)
    params["event_type"] = trigger.value
    code = next((s["params"] for s in pipeline_sources if s.get("type") == "code"), None)
    if code is not None:
        params["codehub_id"] = code.get("codehub_id")
        params["git_url"] = code.get("git_url")
        if code.get("default_branch"):
            params["build_type"] = "branch"
            params["target_branch"] = code["default_branch"]
    override = next((s.params for s in run_sources if s.type == "code"), None)
    if override is not None:
        params["git_url"] = override.git_url
        params["codehub_id"] = override.codehub_id or params["codehub_id"]
        if override.build_params is not None:
            given = override.build_params
            params["build_type"] = given.build_type
            params["target_branch"] = given.target_branch or (
                params["target_branch"] if given.build_type == "branch" else None
            )
            params["tag"] = given.tag
            params["commit_id"] = given.commit_id
            params["message"] = given.message
            params["event_type"] = given.event_type or trigger.value
        elif override.default_branch:
            params["build_type"] = "branch"
            params["target_branch"] = override.default_branch
    if event_params:
        params.update(
            {key: value for key, value in event_params.items() if key in BUILD_PARAM_KEYS}
        )
        params["event_type"] = trigger.value
    return params


def _artifact_params(pipeline_sources: list[dict[str, Any]]) -> dict[str, Any] | None:
    artifact = next((s["params"] for s in pipeline_sources if s.get("type") == "artifact"), None)
    if artifact is None:
        return None
    return {key: artifact.get(key) for key in ARTIFACT_PARAM_KEYS}


def _selection(spec: PipelineSpec, request: RunCreate) -> tuple[set[str], set[str]]:
    """Identifiers of the selected stages and jobs (everything when nothing is chosen)."""
    stage_ids = {stage.identifier for stage in spec.stages}
    job_ids = {job.identifier for _, job in spec.jobs()}
    chosen_stages = set(stage_ids)
    if request.choose_stages:
        for index, identifier in enumerate(request.choose_stages):
            if identifier not in stage_ids:
                raise InvalidInput(f"choose_stages[{index}]: unknown stage '{excerpt(identifier)}'")
        chosen_stages = set(request.choose_stages)
    chosen_jobs = set(job_ids)
    if request.choose_jobs:
        for index, identifier in enumerate(request.choose_jobs):
            if identifier not in job_ids:
                raise InvalidInput(f"choose_jobs[{index}]: unknown job '{excerpt(identifier)}'")
        chosen_jobs = set(request.choose_jobs)
    return chosen_stages, chosen_jobs


def _step_row(
    spec: StepSpec, *, run_id: str, stage_run_id: str, job_run_id: str | None, placement: str
) -> StepRun:
    return StepRun(
        id=new_id(),
        run_id=run_id,
        stage_run_id=stage_run_id,
        job_run_id=job_run_id,
        placement=placement,
        sequence=spec.sequence,
        name=spec.name,
        identifier=spec.identifier,
        task=spec.task,
        business_type=spec.business_type,
        official_task_version=spec.official_task_version,
        inputs=[{"key": key, "value": value} for key, value in spec.inputs],
        status=StageStatus.INIT,
    )


def plan_run(
    pipeline: Pipeline,
    request: RunCreate,
    *,
    executor: Executor,
    trigger: TriggerType,
    now: int,
    vault: Vault | None,
    event_params: Mapping[str, str | None] | None = None,
    origin: RunOrigin | None = None,
) -> RunTree:
    """Build (but do not insert) a new run, RUNNING, its work planned INIT or UNSELECTED; the
    caller fills in its run_number and admits it (which may hold it back instead). `origin`
    is what the caller resolved before its transaction, used if the pipeline's sources are
    still those it was planned from."""
    if origin is None or origin.pipeline_sources != pipeline.sources:
        pipeline_file = origin.pipeline_file if origin is not None else None
        origin = run_origin(pipeline, request, trigger, event_params)
        if pipeline_file is not None:
            origin = origin.with_file(pipeline_file)
    definition = pipeline.definition
    if origin.pipeline_file is not None:
        definition = origin.pipeline_file.definition or NO_STAGES
    spec = parse_definition(definition)
    # a run whose pipeline file cannot be used has no stages to choose from: it fails at once
    broken = origin.pipeline_file is not None and origin.pipeline_file.problem is not None
    chosen_stages, chosen_jobs = (set[str](), set[str]()) if broken else _selection(spec, request)
    run = PipelineRun(
        id=new_id(),
        pipeline_id=pipeline.id,
        project_id=pipeline.project_id,
        run_number=0,
        status=RunStatus.RUNNING,
        trigger_type=trigger.value,
        executor_id=executor.user_id,
        executor_name=executor.display_name,
        description=request.description or "",
        build_params=origin.build_params,
        branch=_branch(origin.build_params),
        artifact_params=_artifact_params(pipeline.sources),
        sources=origin.sources,
        variables=resolve_variables(pipeline.variables, request, vault),
        definition=definition,
        start_time=now,
        updated_at=now,
    )
    problem = origin.pipeline_file.problem if origin.pipeline_file is not None else None
    tree = RunTree(run=run, stages=[], jobs=[], steps=[], problem=problem)
    for stage_spec in spec.stages:
        # A stage whose jobs were all left out is itself left out (planned UNSELECTED).
        stage_selected = stage_spec.identifier in chosen_stages and (
            not stage_spec.jobs or any(job.identifier in chosen_jobs for job in stage_spec.jobs)
        )
        stage = StageRun(
            id=new_id(),
            run_id=run.id,
            sequence=stage_spec.sequence,
            name=stage_spec.name,
            identifier=stage_spec.identifier,
            status=StageStatus.INIT if stage_selected else StageStatus.UNSELECTED,
            is_select=stage_selected,
            run_always=stage_spec.run_always,
            depends_on=list(stage_spec.depends_on),
        )
        tree.stages.append(stage)
        for placement, step_specs in (("pre", stage_spec.pre), ("post", stage_spec.post)):
            tree.steps.extend(
                _step_row(
                    s, run_id=run.id, stage_run_id=stage.id, job_run_id=None, placement=placement
                )
                for s in step_specs
            )
        for job_spec in stage_spec.jobs:
            job_selected = stage_selected and job_spec.identifier in chosen_jobs
            pool, labels = parse_resource(job_spec.resource)
            job = JobRun(
                id=new_id(),
                run_id=run.id,
                stage_run_id=stage.id,
                sequence=job_spec.sequence,
                name=job_spec.name,
                identifier=job_spec.identifier,
                status=StageStatus.INIT if job_selected else StageStatus.UNSELECTED,
                is_select=job_selected,
                is_async=job_spec.is_async,
                depends_on=list(job_spec.depends_on),
                condition=job_spec.condition,
                resource=job_spec.resource,
                timeout=job_spec.timeout,
                pool=pool,
                labels=list(labels),
            )
            tree.jobs.append(job)
            tree.steps.extend(
                _step_row(
                    s, run_id=run.id, stage_run_id=stage.id, job_run_id=job.id, placement="job"
                )
                for s in job_spec.steps
            )
    return tree


def _branch(build_params: dict[str, Any]) -> str | None:
    """The branch a run builds: what it checks out and calls BRANCH (`target_branch`)."""
    branch = build_params.get("target_branch")
    return branch if isinstance(branch, str) and 0 < len(branch) <= BRANCH_MAX_CHARS else None
