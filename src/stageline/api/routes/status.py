"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from typing import Annotated

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import Services, ServicesDep, ViewerCaller
from stageline.domain.errors import InvalidInput
from stageline.schemas.common import CodeArtsId

router = APIRouter()


@router.post("/v5/{project_id}/api/pipelines/status")
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
