"""Feeds for build monitors: the CCTray feed (`/cc.xml`, `/cctray.xml`) and status badges
(`/badges/{project_id}/{pipeline_id}.svg`).

Both are read by clients that poll without a person behind them (CCMenu, Nevergreen, an image
proxy rendering a README), so both take a feed token in the URL (`api.deps.read_feed`), answer
with an ETag, and answer 304 to a matching If-None-Match.
"""

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api import badges, cctray
from stageline.api.deps import FeedReader, Services, ServicesDep
from stageline.api.etags import conditional
from stageline.api.openapi import (
    CALLER_ERRORS,
    CONDITIONAL_GET,
    TOKEN_PARAMETER,
    Responses,
    feed_errors,
)
from stageline.domain.errors import InvalidInput, excerpt
from stageline.domain.monitors import badge_look
from stageline.schemas.common import ID_PATTERN
from stageline.schemas.feed_filters import parse_feed_filters
from stageline.schemas.id_array import parse_id_list
from stageline.store.queries import feeds as feed_queries
from stageline.store.queries.feeds import MonitoredPipeline

router = APIRouter(responses=CALLER_ERRORS)

_ID = re.compile(ID_PATTERN)
NOT_MODIFIED: Responses = {
    304: {"description": "Nothing changed since the ETag sent in If-None-Match."}
}
TOKEN_DESCRIPTION = str(TOKEN_PARAMETER["description"])
CC_XML_RESPONSES: Responses = {
    200: {
        "description": "One Project element per live pipeline (those of pipeline_ids, or all),"
        " by name.",
        "content": {cctray.MEDIA_TYPE: {"schema": {"type": "string"}}},
        "headers": CONDITIONAL_GET,
    },
    **NOT_MODIFIED,
    **feed_errors(400),
}
NO_CACHE = "no-cache, max-age=0, must-revalidate"
"""Image proxies (GitHub's camo) keep a badge only while it revalidates with its ETag."""


def _cc_xml_route(name: str, path: str) -> None:
    @router.get(path, name=name, responses=CC_XML_RESPONSES, response_class=Response)
    async def show_cc_xml(
        caller: FeedReader,
        services: ServicesDep,
        request: Request,
        project_id: Annotated[str, Query(description="The project whose pipelines to list.")],
        pipeline_ids: Annotated[
            str | None,
            Query(description="Comma-separated pipeline IDs; all the project's when left out."),
        ] = None,
        branch: Annotated[
            str | None,
            Query(description="Report each pipeline's runs that built this branch only."),
        ] = None,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
    ) -> Response:
        """The project's pipelines as CCTray projects: `Building` while the latest run has not
        ended, and the last build's status, label (run number), end time and run page."""
        wanted = None
        if pipeline_ids is not None:
            limit = services.settings.batch_max_ids
            wanted = parse_id_list(pipeline_ids, name="pipeline_ids", limit=limit)
        branch = _branch_of(request)
        pipelines = await run_in_threadpool(_monitored, services, caller.project_id, wanted, branch)
        body = cctray.cc_xml(
            services.renderer,
            caller.project_id,
            pipelines,
            now=services.clock(),
            branch=branch,
        )
        return conditional(
            request, body, media_type=cctray.MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
        )

    show_cc_xml.__name__ = name


_cc_xml_route("show_cc_xml", "/cc.xml")
_cc_xml_route("show_cctray_xml", "/cctray.xml")


@router.get(
    "/badges/{project_id}/{pipeline_id}.svg",
    responses={
        200: {
            "description": "A flat status badge of the pipeline's latest run (on `branch`):"
            " passing, failing, running, queued, paused, canceled, ignored, or unknown for a"
            " pipeline without such a run or that does not exist.",
            "content": {badges.MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": CONDITIONAL_GET,
        },
        **NOT_MODIFIED,
        **feed_errors(400),
    },
    response_class=Response,
)
async def show_pipeline_badge(
    caller: FeedReader,
    services: ServicesDep,
    request: Request,
    pipeline_id: str,
    branch: Annotated[
        str | None, Query(description="The latest run that built this branch.")
    ] = None,
    label: Annotated[
        str | None,
        Query(description=f"The left half's text (default `build`), 1 to {badges.LABEL_MAX_CHARS}"),
    ] = None,
    token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
) -> Response:
    """An SVG badge for a README: `build | passing`. A pipeline that does not exist (or has no
    run) shows `unknown` rather than a broken image."""
    if _ID.fullmatch(pipeline_id) is None:
        raise InvalidInput(f"pipeline_id: {excerpt(pipeline_id)!r} does not match {ID_PATTERN}")
    if label is not None and not 0 < len(label) <= badges.LABEL_MAX_CHARS:
        raise InvalidInput(f"label: 1 to {badges.LABEL_MAX_CHARS} characters")
    branch = _branch_of(request)
    found = await run_in_threadpool(_monitored, services, caller.project_id, [pipeline_id], branch)
    latest = found[0].latest if found else None
    look = badge_look(None if latest is None else latest.status)
    body = badges.badge_svg(label or "build", look)
    headers = {"Cache-Control": NO_CACHE, "Access-Control-Allow-Origin": "*"}
    return conditional(request, body, media_type=badges.MEDIA_TYPE, headers=headers)


def _branch_of(request: Request) -> str | None:
    """`branch=` of a request (checked as batch status checks it). cc.xml and badges show every
    pipeline asked for: `status=` is refused rather than silently ignored."""
    filters = parse_feed_filters(request.query_params)
    if filters.statuses is not None:
        raise InvalidInput("status: not a filter of this feed; it shows every pipeline asked for")
    return filters.branch


def _monitored(
    services: Services, project_id: str, pipeline_ids: list[str] | None, branch: str | None
) -> list[MonitoredPipeline]:
    with services.db.connection() as connection:
        return feed_queries.read_monitored_pipelines(
            connection, project_id=project_id, pipeline_ids=pipeline_ids, branch=branch
        )
