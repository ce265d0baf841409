"""The project wall: every pipeline of a project as a tile, kept current over Server-Sent Events.

The page is rendered once on the server, all tiles at once (a thousand pipelines are a few
hundred kilobytes of HTML, and filtering them in the browser is instant). The stream then sends
a pipeline's batch-status element only when it changed, and the page redraws that tile alone.
Tiles are drawn from the same element the batch-status API answers, on both sides.
"""

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import Services
from stageline.api.element_updates import HEARTBEAT_SECONDS, element_updates, event_id
from stageline.auth.roles import Role
from stageline.domain.errors import ProjectNotFound
from stageline.domain.statuses import RunStatus
from stageline.store.queries import identity
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.tables import Pipeline, PipelineRun
from stageline.web.sessions import (
    ApiSession,
    PageSession,
    caller_on,
    services_of,
)
from stageline.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_TILES = 5000
RETRY_MS = 3000


def _live_pipelines(session: Session, project_id: str) -> list[tuple[Pipeline, PipelineRun | None]]:
    """The project's pipelines by name, each with its latest run (None if never run)."""
    _, rows = pipeline_queries.list_pipelines(
        session,
        project_id=project_id,
        name=None,
        is_publish=None,
        creator_ids=None,
        latest_statuses=None,
        offset=0,
        limit=MAX_TILES,
        sort_key="name",
        sort_dir="asc",
    )
    return rows


def _tiles(services: Services, project_id: str) -> tuple[str, list[dict[str, Any]]]:
    with services.db.reader() as session:
        project = identity.read_project(session, project_id=project_id)
        if project is None:
            raise ProjectNotFound(f"project {project_id} not found")
        rows = _live_pipelines(session, project_id)
    render_run = services.renderer.latest_run
    tiles = [
        {
            "pipeline_id": pipeline.id,
            "name": pipeline.name,
            "latest": render_run(latest) if latest is not None else None,
        }
        for pipeline, latest in rows
    ]
    return project.name, tiles


@router.get("/projects/{project_id}")
async def wall_page(request: Request, session: PageSession, project_id: str) -> Response:
    await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    # The change log's mark before the read: the stream catches up on what changed after it.
    mark, _ = await services.log_tail.fresh()
    project_name, tiles = await run_in_threadpool(_tiles, services, project_id)
    context = {
        "mark": mark,
        "project_id": project_id,
        "project_name": project_name,
        "tiles": tiles,
        "statuses": list(RunStatus),
    }
    return render(request, "wall.html", context, session=session)


@router.get("/projects/{project_id}/wall/stream")
async def wall_stream(
    request: Request, session: ApiSession, project_id: str, after: str | None = None
) -> Response:
    """Each event's data: `{"pipeline_id", "element"}`, the element null when it has none
    (and `"deleted": true` when the pipeline is gone);
    its `id` the change sequence it is current up to. It starts with the pipelines changed
    after `after` (or Last-Event-ID, on a reconnection)."""
    await caller_on(request, session, project_id, Role.VIEWER)
    resume_after = event_id(request.headers.get("last-event-id") or after)
    return EventSourceResponse(
        _events(services_of(request), project_id, resume_after),
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _pipeline_ids(services: Services, project_id: str) -> list[str]:
    with services.db.reader() as session:
        return [pipeline.id for pipeline, _ in _live_pipelines(session, project_id)]


async def _events(
    services: Services, project_id: str, after: int | None
) -> AsyncIterator[ServerSentEvent]:
    project_pipelines = partial(_pipeline_ids, services, project_id)
    with services.live.watch(project_id=project_id) as watch:
        yield ServerSentEvent(comment="project wall", retry=RETRY_MS)
        updates = element_updates(
            services, watch, project_pipelines, after=after, current_first=False
        )
        async for batch in updates:
            live: set[str] = set()
            if any(update.element is None for update in batch):  # never run, or deleted?
                live = set(await run_in_threadpool(project_pipelines))
            for pipeline_id, element, seq in batch:
                data = b'{"pipeline_id":' + orjson.dumps(pipeline_id)
                data += b',"element":' + (element or b"null")
                if element is None and pipeline_id not in live:
                    data += b',"deleted":true'
                yield ServerSentEvent((data + b"}").decode(), id=str(seq))
