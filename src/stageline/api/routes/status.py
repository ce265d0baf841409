"""POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at once."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Body
from starlette.responses import Response

from stageline.api.deps import ServicesDep, ViewerCaller
from stageline.domain.errors import InvalidInput
from stageline.schemas.common import CodeArtsId
from stageline.store.queries import runs as run_queries

router = APIRouter()


@router.post("/v5/{project_id}/api/pipelines/status")
def batch_show_pipelines_latest_status(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_ids: Annotated[list[CodeArtsId], Body()],
) -> Response:
    """Each requested pipeline that has a run, once, in request order; others are absent."""
    limit = services.settings.batch_max_ids
    if len(pipeline_ids) > limit:
        raise InvalidInput(
            f"body: at most {limit} pipeline IDs per request, got {len(pipeline_ids)}"
        )
    wanted = list(dict.fromkeys(pipeline_ids))
    if not wanted:
        return Response(b"[]", media_type="application/json")
    with services.db.reader() as session:
        found = dict(
            run_queries.latest_runs(session, project_id=caller.project_id, pipeline_ids=wanted)
        )
    render = services.renderer.latest_run
    body = [render(found[pid]) for pid in wanted if pid in found]
    return Response(orjson.dumps(body), media_type="application/json")
