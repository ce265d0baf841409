"""GET /v5/{project_id}/api/pipelines/status/stream — batch status as Server-Sent Events.

First one event per requested pipeline that has a run, its data the batch-status element; then
one event whenever a pipeline's element changes, within the change feed's delay of the commit
(made by any server process). Each event's `id` is the change log's sequence number up to which
its element is current, so a client that reconnects with `Last-Event-ID` (browsers do) gets
again only the pipelines that changed meanwhile: nothing is lost, as long as the change log
still reaches back that far (else it gets every element again).
"""

from collections.abc import AsyncIterator

import orjson
from fastapi import Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from stageline.api.deps import FeedReader, Services, ServicesDep
from stageline.api.element_updates import HEARTBEAT_SECONDS, Update, element_updates, event_id
from stageline.api.openapi import TOKEN_PARAMETER, feed_errors
from stageline.api.routing import v5_router
from stageline.domain.errors import InvalidInput
from stageline.schemas.id_array import parse_id_list

router = v5_router()

RETRY_MS = 3000
REMOVED = "removed"
"""The event type that says a pipeline no longer has an element (it was deleted)."""


@router.get(
    "/v5/{project_id}/api/pipelines/status/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: each `message` event's data is a batch-status"
            " element (PipelineLatestRun); a `removed` event's data is"
            ' `{"pipeline_id": …}`; `id` is the change sequence to resume after.',
        },
        **feed_errors(400),
    },
    openapi_extra={"parameters": [TOKEN_PARAMETER]},
)
async def stream_pipelines_latest_status(
    caller: FeedReader,
    services: ServicesDep,
    request: Request,
    pipeline_ids: str = Query(description="Comma-separated pipeline IDs."),
    last_event_id: str | None = Query(
        None, description="Resume after this event ID, for clients that cannot send the header."
    ),
) -> EventSourceResponse:
    wanted = parse_id_list(pipeline_ids, name="pipeline_ids", limit=services.settings.batch_max_ids)
    if not wanted:
        raise InvalidInput("pipeline_ids: name at least one pipeline ID")
    resume_after = event_id(request.headers.get("last-event-id") or last_event_id)
    events = _events(services, caller.project_id, wanted, resume_after)
    return EventSourceResponse(
        events,
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    services: Services, project_id: str, wanted: list[str], resume_after: int | None
) -> AsyncIterator[ServerSentEvent]:
    with services.live.watch(project_id=project_id, pipeline_ids=frozenset(wanted)) as watch:
        yield ServerSentEvent(comment="stream of pipelines' latest runs", retry=RETRY_MS)
        updates = element_updates(
            services, watch, lambda: wanted, after=resume_after, current_first=True
        )
        async for batch in updates:
            for update in batch:
                yield _event(update)


def _event(update: Update) -> ServerSentEvent:
    if update.element is None:
        data = orjson.dumps({"pipeline_id": update.pipeline_id}).decode()
        return ServerSentEvent(data, event=REMOVED, id=str(update.seq))
    return ServerSentEvent(update.element.decode(), id=str(update.seq))
