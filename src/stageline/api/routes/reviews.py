"""Manual reviews of a run: pass or refuse a review job's step, pass a stage-entry review
(`/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/…`)."""

from typing import Annotated

from fastapi import Query

from stageline.api.deps import DeveloperCaller, ServicesDep
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.engine.runs import Reviewer, RunScope
from stageline.schemas.responses.runs import Success

router = v5_router("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs")
Comment = Annotated[str | None, Query(max_length=1024)]


def decide(
    caller: DeveloperCaller,
    services: ServicesDep,
    ids: tuple[str, str, str | None, str],
    *,
    approve: bool,
    comment: str | None = None,
) -> Success:
    """Decide the review `ids` = (pipeline, run, job or None for a stage entry, step)."""
    pipeline_id, run_id, job_run_id, step_run_id = ids
    principal = caller.principal
    services.engine.decide_review(
        RunScope(caller.project_id, pipeline_id, run_id),
        step_run_id=step_run_id,
        job_run_id=job_run_id,
        reviewer=Reviewer(user_id=principal.user_id, name=principal.name),
        approve=approve,
        comment=comment,
    )
    return {"success": True}


@router.post(
    "/{pipeline_run_id}/jobs/{job_run_id}/steps/{step_run_id}/pass",
    responses=error_responses(400, 409),
)
def accept_manual_review(
    caller: DeveloperCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    job_run_id: str,
    step_run_id: str,
    approval_description: Comment = None,
) -> Success:
    """Pass a review job; with check_strategy `all` it passes once every approver did."""
    ids = (pipeline_id, pipeline_run_id, job_run_id, step_run_id)
    return decide(caller, services, ids, approve=True, comment=approval_description)


@router.post(
    "/{pipeline_run_id}/jobs/{job_run_id}/steps/{step_run_id}/refuse",
    responses=error_responses(400, 409),
)
def reject_manual_review(
    caller: DeveloperCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    job_run_id: str,
    step_run_id: str,
    approval_description: Comment = None,
) -> Success:
    """Refuse a review job: it FAILS at once, whatever the strategy."""
    ids = (pipeline_id, pipeline_run_id, job_run_id, step_run_id)
    return decide(caller, services, ids, approve=False, comment=approval_description)


@router.post("/{pipeline_run_id}/steps/{step_run_id}/manual/pass", responses=error_responses(409))
def accept_checkpoint(
    caller: DeveloperCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    step_run_id: str,
) -> Success:
    """Pass a stage-entry review (a checkpoint step in the stage's `pre`)."""
    return decide(caller, services, (pipeline_id, pipeline_run_id, None, step_run_id), approve=True)
