"""A run's page, at the path of the batch-status element's `detail_url`: stages, jobs (their
`depends_on` graph) and steps with statuses and durations, step logs and outputs, artifacts,
and the actions whoever looks may take (Stop, Retry, Pass/Refuse a manual review).

The page reads the run through the API's ShowPipelineRunDetail handler and acts through the
engine commands the API's routes call, with the session's caller: the same checks, the same
refusals (403 with the error body for a viewer, 409 for a run in the wrong state).
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from stageline.api.deps import Caller, Services
from stageline.api.routes import reviews as api_reviews
from stageline.api.routes.artifacts import download_pipeline_artifact
from stageline.api.routes.runs import (
    retry_pipeline_run,
    show_pipeline_run_detail,
    stop_pipeline_run,
)
from stageline.auth.roles import Role
from stageline.domain.errors import InvalidInput, StepNotFound, excerpt
from stageline.domain.pipeline import CHECKPOINT_TASK
from stageline.domain.statuses import RUN_ACTIVE, RUN_RETRYABLE, STAGE_RETRYABLE
from stageline.schemas.responses.runs import RunDetail
from stageline.schemas.runs import RunRetry
from stageline.store.queries import identity
from stageline.store.queries import runs as run_queries
from stageline.web.graph import layout
from stageline.web.sessions import (
    ApiSession,
    ChangingSession,
    PageSession,
    caller_on,
    services_of,
)
from stageline.web.templating import render

router = APIRouter(include_in_schema=False)
RUN_PATH = "/projects/{project_id}/pipelines/{pipeline_id}/runs/{run_id}"


def read_run(
    caller: Caller, services: Services, pipeline_id: str, run_id: str
) -> tuple[RunDetail, dict[str, list[Any]]]:
    """The run detail as the API shows it, and each step's outputs (already masked)."""
    detail = show_pipeline_run_detail(caller, services, pipeline_id, pipeline_run_id=run_id)
    with services.db.reader() as session:
        outputs = {s.id: s.outputs for s in run_queries.list_steps(session, run_id=detail["id"])}
    return detail, outputs


def project_name(services: Services, project_id: str) -> str:
    with services.db.reader() as session:
        project = identity.read_project(session, project_id=project_id)
    return project.name if project else project_id


def artifact_links(detail: RunDetail) -> list[tuple[str, str]]:
    """(name, artifact ID) of each artifact; the API's download URL ends in …/{id}/download."""
    return [
        (artifact["name"], artifact["downloadUrl"].rsplit("/", 2)[-2])
        for artifact in detail["artifacts"]
    ]


def run_state(detail: RunDetail, outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """What the page redraws live: the run's and every stage's, job's and step's status and
    times by ID, the steps' outputs and the run's artifacts (both appear as steps end)."""
    items: dict[str, Any] = {}
    for stage in detail["stages"]:
        items[stage["id"]] = [stage["status"], stage["start_time"], stage["end_time"]]
        for step in [*stage["pre"], *stage["post"]]:
            items[step["id"]] = [step["status"], step["start_time"], step["end_time"]]
        for job in stage["jobs"]:
            items[job["id"]] = [job["status"], job["start_time"], job["end_time"]]
            for step in job["steps"]:
                items[step["id"]] = [step["status"], step["start_time"], step["end_time"]]
    return {
        "run": [detail["status"], detail["start_time"], detail["end_time"]],
        "message": detail["message"],
        "items": items,
        "outputs": {step_id: shown for step_id, shown in outputs.items() if shown},
        "artifacts": artifact_links(detail),
        "now": detail["current_system_time"],
    }


@router.get(RUN_PATH)
async def run_page(
    request: Request, session: PageSession, project_id: str, pipeline_id: str, run_id: str
) -> Response:
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    detail, outputs = await run_in_threadpool(read_run, caller, services, pipeline_id, run_id)
    context = {
        "project_id": project_id,
        "project_name": await run_in_threadpool(project_name, services, project_id),
        "pipeline_id": pipeline_id,
        "run": detail,
        "graphs": {stage["id"]: layout(stage["jobs"]) for stage in detail["stages"]},
        "outputs": outputs,
        "artifacts": artifact_links(detail),
        "checkpoint_task": CHECKPOINT_TASK,
        "can_act": caller.role >= Role.DEVELOPER,
        "active": sorted(RUN_ACTIVE),
        "retryable": sorted(RUN_RETRYABLE),
        "job_retryable": sorted(STAGE_RETRYABLE),
    }
    return render(request, "run.html", context, session=session)


@router.post(RUN_PATH + "/stop")
async def stop_run(
    request: Request, session: ChangingSession, project_id: str, pipeline_id: str, run_id: str
) -> dict[str, bool]:
    caller = await caller_on(request, session, project_id, Role.DEVELOPER)
    services = services_of(request)
    await run_in_threadpool(stop_pipeline_run, caller, services, pipeline_id, run_id)
    return {"success": True}


@router.post(RUN_PATH + "/retry")
async def retry_run(
    request: Request, session: ChangingSession, project_id: str, pipeline_id: str, run_id: str
) -> dict[str, bool]:
    """JSON in: `{"job_run_ids": [...]}` for some failed jobs, `{}` for all of them."""
    caller = await caller_on(request, session, project_id, Role.DEVELOPER)
    try:
        body = RunRetry.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        raise InvalidInput(f"body: {error.errors()[0]['msg']}") from None
    services = services_of(request)
    await run_in_threadpool(retry_pipeline_run, caller, services, pipeline_id, run_id, body)
    return {"success": True}


@router.post(RUN_PATH + "/reviews/{step_run_id}/{decision}")
async def decide_review(
    request: Request,
    session: ChangingSession,
    project_id: str,
    pipeline_id: str,
    run_id: str,
    step_run_id: str,
    decision: str,
) -> dict[str, bool]:
    """`decision`: pass or refuse; a review job's step or a stage-entry review alike."""
    if decision not in ("pass", "refuse"):
        raise InvalidInput("decision: pass or refuse")
    caller = await caller_on(request, session, project_id, Role.DEVELOPER)
    services = services_of(request)

    def decide() -> None:
        with services.db.reader() as db_session:
            step = run_queries.read_step(db_session, step_run_id=step_run_id)
        if step is None or step.run_id != run_id:
            raise StepNotFound(f"no manual review step {excerpt(step_run_id)} in this run")
        if step.job_run_id is None and decision == "refuse":
            raise InvalidInput("a stage-entry review can be passed, not refused")
        ids = (pipeline_id, run_id, step.job_run_id, step.id)
        api_reviews.decide(caller, services, ids, approve=decision == "pass")

    await run_in_threadpool(decide)
    return {"success": True}


@router.get(RUN_PATH + "/artifacts/{artifact_id}")
async def download_artifact(
    request: Request,
    session: ApiSession,
    project_id: str,
    pipeline_id: str,
    run_id: str,
    artifact_id: str,
) -> FileResponse:
    """The API's download, for a browser that holds a session rather than a token."""
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    return await run_in_threadpool(
        download_pipeline_artifact, caller, services, pipeline_id, run_id, artifact_id
    )
