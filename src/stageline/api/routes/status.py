"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from typing import Annotated

from fastapi import Body
from starlette.responses import Response

from stageline.api.deps import ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.domain.errors import InvalidInput
from stageline.schemas.common import CodeArtsId
from stageline.schemas.responses.latest_run import PipelineLatestRun
from stageline.store.queries import runs as run_queries

router = v5_router()


# The body is joined from pre-rendered elements (api.status_cache), never re-serialised: the
# model is only declared.
@router.post(
    "/v5/{project_id}/api/pipelines/status",
    responses={
        200: {
            "model": list[PipelineLatestRun],
            "description": "The latest run of each requested pipeline that has one, in request"
            " order; a pipeline without runs, unknown or deleted is absent.",
        },
        **error_responses(400, 415),
    },
)
async def batch_show_pipelines_latest_status(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_ids: Annotated[list[CodeArtsId], Body()],
) -> Response:
    """Each requested pipeline that has a run, once, in request order; others are absent.

    It reads on the event loop: one indexed statement (plus rendering runs that changed) costs
    less than handing the request to a thread and back (docs/performance.md).
    """
    limit = services.settings.batch_max_ids
    if len(pipeline_ids) > limit:
        raise InvalidInput(
            f"body: at most {limit} pipeline IDs per request, got {len(pipeline_ids)}"
        )
    wanted = list(dict.fromkeys(pipeline_ids))
    with services.db.connection() as connection:
        latest = (
            run_queries.latest_run_versions(
                connection, project_id=caller.project_id, pipeline_ids=wanted
            )
            if wanted
            else []
        )
        elements = services.rendered_runs.elements(
            connection, [(run_id, revision) for _, run_id, revision in latest]
        )
    run_of = {pipeline_id: run_id for pipeline_id, run_id, _ in latest}
    body = b",".join(elements[run_of[pid]] for pid in wanted if run_of.get(pid) in elements)
    return Response(b"[" + body + b"]", media_type="application/json")
