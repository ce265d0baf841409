"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from typing import Annotated

from fastapi import Body
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import Services, ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.domain.errors import InvalidInput
from stageline.schemas.common import CodeArtsId
from stageline.schemas.responses.latest_run import PipelineLatestRun

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

    The database is read on a worker thread, so that one slow statement never holds up the
    other requests this process serves; what did not change since the last request is answered
    from memory (`LatestRuns`).
    """
    limit = services.settings.batch_max_ids
    if len(pipeline_ids) > limit:
        raise InvalidInput(
            f"body: at most {limit} pipeline IDs per request, got {len(pipeline_ids)}"
        )
    wanted = list(dict.fromkeys(pipeline_ids))
    elements = await run_in_threadpool(_latest_elements, services, caller.project_id, wanted)
    return Response(b"[" + b",".join(elements) + b"]", media_type="application/json")


def _latest_elements(services: Services, project_id: str, wanted: list[str]) -> list[bytes]:
    with services.db.connection() as connection:
        return services.latest_runs.elements(connection, project_id=project_id, pipeline_ids=wanted)
