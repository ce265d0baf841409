"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import Services, ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.api.status_cache import Entry
from stageline.schemas.id_array import ID_ARRAY_SCHEMA, parse_id_array
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
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ID_ARRAY_SCHEMA}},
        }
    },
)
async def batch_show_pipelines_latest_status(
    caller: ViewerCaller, services: ServicesDep, request: Request
) -> Response:
    """Each requested pipeline that has a run, once, in request order; others are absent.

    What did not change since this process last rendered it is answered from memory
    (`LatestRuns`) once the change log's tail, read after the request arrived, says so
    (`LogTail`). The database is never read on the event loop, so one slow statement never holds
    up the other requests this process serves.
    """
    wanted = parse_id_array(
        await request.body(),
        content_type=request.headers.get("content-type", ""),
        limit=services.settings.batch_max_ids,
    )
    latest_runs = services.latest_runs
    mark, generation = await services.log_tail.fresh()
    found, missing = latest_runs.lookup(wanted)
    if missing:
        found |= await run_in_threadpool(_render, services, missing, mark, generation)
    elements = latest_runs.assemble(caller.project_id, wanted, found)
    return Response(b"[" + b",".join(elements) + b"]", media_type="application/json")


def _render(services: Services, missing: list[str], mark: int, generation: int) -> dict[str, Entry]:
    with services.db.connection() as connection:
        return services.latest_runs.render(connection, missing, mark, generation)
