"""Runs of a pipeline: run, stop, detail, list, step logs
(`/v5/{project_id}/api/pipelines/{pipeline_id}/…`)."""

from typing import Annotated, Any

from fastapi import Body

from stageline.api.deps import DeveloperCaller, ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.domain.errors import InvalidInput, RunNotFound, StepNotFound, excerpt
from stageline.domain.statuses import STAGE_TERMINAL
from stageline.engine.journal import Actor
from stageline.engine.lookups import find_pipeline, find_run, find_step
from stageline.engine.runs import RunScope
from stageline.engine.scheduler import Executor
from stageline.schemas.common import MAX_INT32
from stageline.schemas.responses.runs import (
    LogWindow,
    RunDetail,
    RunList,
    RunStarted,
    StepOutputs,
    Success,
)
from stageline.schemas.runs import LogQuery, RunCreate, RunListQuery, RunRetry
from stageline.store.queries import artifacts as artifact_queries
from stageline.store.queries import logs as log_queries
from stageline.store.queries import runs as run_queries

router = v5_router("/v5/{project_id}/api/pipelines/{pipeline_id}")


@router.post("/run", responses=error_responses(400, 409, 415))
def run_pipeline(
    caller: DeveloperCaller,
    services: ServicesDep,
    pipeline_id: str,
    body: Annotated[RunCreate | None, Body()] = None,
) -> RunStarted:
    principal = caller.principal
    run_id = services.engine.start_run(
        project_id=caller.project_id,
        pipeline_id=pipeline_id,
        request=body or RunCreate(),
        executor=Executor(user_id=principal.user_id, display_name=principal.display_name),
        actor=Actor.user(principal.name),
    )
    return {"pipeline_run_id": run_id}


@router.post("/pipeline-runs/{pipeline_run_id}/stop", responses=error_responses(409))
def stop_pipeline_run(
    caller: DeveloperCaller, services: ServicesDep, pipeline_id: str, pipeline_run_id: str
) -> Success:
    services.engine.stop_run(
        RunScope(caller.project_id, pipeline_id, pipeline_run_id),
        actor=Actor.user(caller.principal.name),
    )
    return {"success": True}


@router.put("/pipeline-runs/{pipeline_run_id}/retry", responses=error_responses(400, 409, 415))
def retry_pipeline_run(
    caller: DeveloperCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    body: Annotated[RunRetry | None, Body()] = None,
) -> Success:
    """Re-run the failed (or canceled) jobs, all or those in `job_run_ids`, in the same run."""
    services.engine.retry_run(
        RunScope(caller.project_id, pipeline_id, pipeline_run_id),
        job_run_ids=body.job_run_ids if body else None,
        actor=Actor.user(caller.principal.name),
    )
    return {"success": True}


# The handler builds its list untyped, so the model is named here rather than as its return type.
@router.get(
    "/pipeline-runs/{pipeline_run_id}/steps/outputs",
    response_model=StepOutputs,
    responses=error_responses(400),
)
def show_step_outputs(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    step_run_ids: str | None = None,
) -> dict[str, Any]:
    """The `key=value` outputs of the named steps (comma separated), in the order asked."""
    wanted = [i.strip() for i in (step_run_ids or "").split(",") if i.strip()]
    if not wanted:
        raise InvalidInput("step_run_ids: at least one step run ID is required")
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, pipeline_run_id)
        steps = {s.id: s for s in run_queries.list_steps(session, run_id=run.id)}
    outputs = []
    for step_run_id in dict.fromkeys(wanted):
        step = steps.get(step_run_id)
        if step is None:
            raise StepNotFound(f"step run {excerpt(step_run_id)} not found in run {run.id}")
        outputs.append({"step_run_id": step.id, "output_result": step.outputs})
    return {"step_outputs": outputs, "current_system_time": services.clock()}


def _run_number(text: str) -> int:
    """A run number as the query gives it: ASCII digits ("²".isdigit() is true too), 1 or more,
    and no larger than a run number can be."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 1 <= int(text) <= MAX_INT32:
        raise InvalidInput(f"pipeline_run_number: '{excerpt(text)}' is not a run number (1, 2, …)")
    return int(text)


@router.get("/pipeline-runs/detail", responses=error_responses(400))
def show_pipeline_run_detail(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str | None = None,
    pipeline_run_number: str | None = None,
) -> RunDetail:
    """By ID, by number, or — with neither — the latest run."""
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        if pipeline_run_id:
            run = find_run(session, pipeline, pipeline_run_id)
        elif pipeline_run_number:
            number = _run_number(pipeline_run_number)
            found = run_queries.read_run_by_number(
                session, pipeline_id=pipeline.id, run_number=number
            )
            if found is None:
                raise RunNotFound(f"pipeline {pipeline_id} has no run #{number}")
            run = found
        else:
            if pipeline.latest_run_id is None:
                raise RunNotFound(f"pipeline {pipeline_id} has never run")
            run = find_run(session, pipeline, pipeline.latest_run_id)
        stages = run_queries.list_stages(session, run_id=run.id)
        jobs = run_queries.list_jobs(session, run_id=run.id)
        steps = run_queries.list_steps(session, run_id=run.id)
        artifacts = artifact_queries.list_artifacts(session, run_id=run.id)
    return services.renderer.run_detail(
        pipeline, run, stages, jobs, steps, artifacts, now=services.clock()
    )


@router.post("/pipeline-runs/list", responses=error_responses(400, 415))
def list_pipeline_runs(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    query: Annotated[RunListQuery | None, Body()] = None,
) -> RunList:
    query = query or RunListQuery()
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        total, runs = run_queries.list_runs(
            session,
            pipeline_id=pipeline.id,
            statuses=list(query.status) if query.status else None,
            trigger_types=list(query.trigger_type) if query.trigger_type else None,
            executor_ids=query.executor_ids,
            offset=query.offset,
            limit=query.limit,
            sort_key=query.sort_key,
            sort_dir=query.sort_dir,
        )
    render = services.renderer.latest_run
    return {
        "offset": query.offset,
        "limit": query.limit,
        "total": total,
        "pipeline_runs": [render(run, include_stage_id=True) for run in runs],
    }


@router.post(
    "/pipeline-runs/{pipeline_run_id}/jobs/{job_run_id}/steps/{step_run_id}/logs",
    responses=error_responses(400, 415),
)
def show_pipeline_log(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    job_run_id: str,
    step_run_id: str,
    query: LogQuery,
) -> LogWindow:
    """A window of a step's log by line offsets; `end_offset` of the answer is where to go on.

    `has_more` is true while more lines exist past the window or the step is still running.
    """
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, pipeline_run_id)
        step = find_step(session, run, step_run_id, job_run_id=job_run_id)
        start = query.start_offset or 0
        end = query.end_offset or None
        lines = log_queries.read_log_lines(
            session, step_run_id=step.id, start=start, end=end, limit=query.limit, sort=query.sort
        )
        total = log_queries.next_line_numbers(session, step_run_ids=[step.id])[step.id]
        still_writing = step.status not in STAGE_TERMINAL
    numbers = [number for number, _ in lines]
    first = min(numbers, default=start)
    last = max(numbers, default=start - 1) + 1
    if query.sort == "asc":
        has_more = last < (end if end is not None else total) or still_writing
    else:
        has_more = first > start or still_writing
    text = "".join(f"{content}\n" for _, content in lines)
    return {
        "has_more": has_more,
        "start_offset": str(first),
        "end_offset": str(last),
        "log": text,
        "step_run_id": step.id,
    }
