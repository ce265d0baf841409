"""Batch status: POST /v5/{project_id}/api/pipelines/status — the latest run of many pipelines at
once — and its GET form for pollers and dashboards, with an ETag and 304s."""

from collections.abc import Callable
from typing import Annotated

import orjson
from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import (
    Caller,
    FeedReader,
    Services,
    ServicesDep,
    ViewerCaller,
    services_of,
)
from stageline.api.etags import conditional, element_digest, etag_of_elements
from stageline.api.latest_elements import fresh_entries
from stageline.api.openapi import CONDITIONAL_GET, TOKEN_PARAMETER, error_responses, feed_errors
from stageline.api.routing import v5_router
from stageline.api.status_cache import answer_key
from stageline.schemas.feed_filters import NO_FILTERS, FeedFilters, parse_feed_filters
from stageline.schemas.id_array import ID_ARRAY_SCHEMA, parse_id_array, parse_id_list
from stageline.schemas.responses.latest_run import PipelineLatestRun
from stageline.store.queries import feeds as feed_queries

router = v5_router()

JSON = "application/json"
ANSWER = {
    "model": list[PipelineLatestRun],
    "description": "The latest run (on `branch`, if given) of each requested pipeline that has"
    " one and whose status is among `status`, if given, in request order; a pipeline without"
    " runs, unknown or deleted is absent.",
}
BRANCH_PARAMETER = {
    "name": "branch",
    "in": "query",
    "required": False,
    "description": "Answer each pipeline's latest run that built this branch (its"
    " build_params.target_branch) instead of its latest run.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
STATUS_PARAMETER = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "Comma-separated run statuses (COMPLETED, RUNNING, FAILED, CANCELED, PAUSED,"
    " SUSPEND, IGNORED): only pipelines whose latest run is in one of them.",
    "schema": {"type": "string"},
}


# The body is joined from pre-rendered elements (api.status_cache), never re-serialised: the
# model is only declared.
@router.post(
    "/v5/{project_id}/api/pipelines/status",
    responses={
        200: {**ANSWER, "headers": {"ETag": CONDITIONAL_GET["ETag"]}},
        **error_responses(400, 415),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ID_ARRAY_SCHEMA}},
        },
        "parameters": [BRANCH_PARAMETER, STATUS_PARAMETER],
    },
)
async def batch_show_pipelines_latest_status(caller: ViewerCaller, request: Request) -> Response:
    """Each requested pipeline that has a run, once, in request order; others are absent,
    answered strictly fresh and mostly from memory (`api.latest_elements`).

    The answer carries an ETag, but a POST's `If-None-Match` is not honoured: RFC 9110 would
    have it answered 412, which tells a poller nothing. Conditional polling is the GET's.
    """
    services = services_of(request)  # not a dependency: each costs this hot route ~10 %
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    query = request.scope["query_string"]
    filters = parse_feed_filters(request.query_params) if query else NO_FILTERS
    answer, etag = await latest_runs_body(
        caller,
        services,
        lambda: parse_id_array(
            body, content_type=content_type, limit=services.settings.batch_max_ids
        ),
        filters,
        memo_key=(query, content_type, body),
    )
    return Response(answer, media_type=JSON, headers={"ETag": etag})


@router.get(
    "/v5/{project_id}/api/pipelines/status",
    responses={
        200: {**ANSWER, "headers": CONDITIONAL_GET},
        304: {"description": "Nothing changed since the ETag sent in If-None-Match; no body."},
        **feed_errors(400),
    },
    openapi_extra={"parameters": [BRANCH_PARAMETER, STATUS_PARAMETER, TOKEN_PARAMETER]},
)
async def show_pipelines_latest_status(
    caller: FeedReader,
    services: ServicesDep,
    request: Request,
    pipeline_ids: Annotated[
        str,
        Query(
            description="Comma-separated pipeline IDs (each 32 letters and digits), as many as"
            " the POST's body may hold; empty for none."
        ),
    ],
) -> Response:
    """The POST's answer for a GET, so that a dashboard can poll it conditionally: the ETag of
    the answer sent back in `If-None-Match` is answered 304, with no body, while nothing changed.
    Feed tokens (`?token=`) are accepted here, as on the other feeds."""
    filters = parse_feed_filters(request.query_params)
    body, etag = await latest_runs_body(
        caller,
        services,
        lambda: parse_id_list(
            pipeline_ids, name="pipeline_ids", limit=services.settings.batch_max_ids
        ),
        filters,
        memo_key=(request.scope["query_string"],),
    )
    return conditional(
        request, body, media_type=JSON, headers={"Cache-Control": "no-cache"}, etag=etag
    )


async def latest_runs_body(
    caller: Caller,
    services: Services,
    wanted: Callable[[], list[str]],
    filters: FeedFilters,
    *,
    memo_key: tuple[bytes | str, ...],
) -> tuple[bytes, str]:
    """The JSON array of the wanted pipelines' latest runs, filtered, and its ETag.

    `wanted` parses the request's IDs. A request whose `memo_key` (what it says, word for
    word) was answered before is answered again from memory while none of its pipelines
    changed, without parsing it again: pollers repeat the same request.
    """
    if filters.branch is not None:
        ids = wanted()
        elements = await run_in_threadpool(_on_branch, services, caller.project_id, ids, filters)
        digests = [element_digest(element) for element in elements]
        return b"[" + b",".join(elements) + b"]", etag_of_elements(digests)
    latest_runs = services.latest_runs
    key = answer_key(caller.project_id, *memo_key)
    mark, generation = await services.log_tail.fresh()
    recalled = latest_runs.recall(key, mark, generation)
    if recalled is not None:
        return recalled
    ids = wanted()
    _, found = await fresh_entries(services, ids, (mark, generation))
    entries = latest_runs.assemble(caller.project_id, ids, found, filters.statuses)
    body = b"[" + b",".join(entry.element for entry in entries if entry.element is not None) + b"]"
    etag = etag_of_elements([entry.digest for entry in entries])
    latest_runs.remember(key, ids, mark, generation, body, etag)
    return body, etag


def _on_branch(
    services: Services, project_id: str, wanted: list[str], filters: FeedFilters
) -> list[bytes]:
    """Read and render each pipeline's latest run on the branch. Not cached: the change log
    says which pipelines changed, not on which branch, and a branch's answer is one indexed
    probe per pipeline."""
    assert filters.branch is not None
    with services.db.connection() as connection:
        rows = feed_queries.latest_runs_on_branch(
            connection, project_id=project_id, pipeline_ids=wanted, branch=filters.branch
        )
    by_pipeline = {
        row.pipeline_id: row
        for row in rows
        if filters.statuses is None or row.status in filters.statuses
    }
    renderer = services.renderer
    return [
        orjson.dumps(renderer.latest_run(by_pipeline[pipeline_id]))
        for pipeline_id in wanted
        if pipeline_id in by_pipeline
    ]
