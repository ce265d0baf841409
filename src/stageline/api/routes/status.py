"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from fastapi import Request
from starlette.responses import Response

from stageline.api.deps import ServicesDep, ViewerCaller
from stageline.api.latest_elements import fresh_entries
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
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
    """Each requested pipeline that has a run, once, in request order; others are absent,
    answered strictly fresh and mostly from memory (`api.latest_elements`)."""
    wanted = parse_id_array(
        await request.body(),
        content_type=request.headers.get("content-type", ""),
        limit=services.settings.batch_max_ids,
    )
    _, found = await fresh_entries(services, wanted)
    elements = services.latest_runs.assemble(caller.project_id, wanted, found)
    return Response(b"[" + b",".join(elements) + b"]", media_type="application/json")
