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
from starlette.concurrency import run_in_threadpool

from stageline.api.deps import FeedReader, Services, ServicesDep
from stageline.api.latest_elements import current_elements
from stageline.api.live import Watch
from stageline.api.openapi import feed_errors
from stageline.api.routes.status import TOKEN_PARAMETER
from stageline.api.routing import v5_router
from stageline.domain.errors import InvalidInput
from stageline.schemas.id_array import parse_id_list
from stageline.store.queries import changes as change_queries

router = v5_router()

HEARTBEAT_SECONDS = 15.0
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
    resume_after = _event_id(request.headers.get("last-event-id") or last_event_id)
    events = _events(services, caller.project_id, wanted, resume_after)
    return EventSourceResponse(
        events,
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"Last-Event-ID: {value[:40]!r} is not an event ID of this stream")
    return int(value)


async def _events(
    services: Services, project_id: str, wanted: list[str], resume_after: int | None
) -> AsyncIterator[ServerSentEvent]:
    with services.live.watch(project_id=project_id, pipeline_ids=frozenset(wanted)) as watch:
        yield ServerSentEvent(comment="stream of pipelines' latest runs", retry=RETRY_MS)
        first = wanted
        if resume_after is not None:
            first = await _changed_after(services, resume_after, wanted)
        mark, elements = await current_elements(services, project_id, first)
        sent: dict[str, bytes | None] = {}
        for pipeline_id in first:
            element = elements[pipeline_id]
            if element is not None or resume_after is not None:
                yield _event(pipeline_id, element, mark)
            sent[pipeline_id] = element
        async for changed, seq in _changes(watch, wanted, since=mark):
            _, elements = await current_elements(services, project_id, changed)
            for pipeline_id in changed:
                element = elements[pipeline_id]
                if sent.get(pipeline_id) != element:
                    yield _event(pipeline_id, element, seq)
                    sent[pipeline_id] = element


async def _changes(
    watch: Watch, wanted: list[str], *, since: int
) -> AsyncIterator[tuple[list[str], int]]:
    """The watched pipelines that changed, in request order, and the highest sequence number
    among those changes: every watched change up to it has been delivered (the feed delivers in
    order), so an element read afterwards is current up to it."""
    seq = since
    while True:
        changes = await watch.next(HEARTBEAT_SECONDS)
        if watch.take_overflow():
            yield wanted, max([seq, *(change.seq for change in changes)])
            continue
        if not changes:
            continue
        seq = max(seq, changes[-1].seq)
        touched = {change.pipeline_id for change in changes}
        yield [pipeline_id for pipeline_id in wanted if pipeline_id in touched], seq


def _event(pipeline_id: str, element: bytes | None, seq: int) -> ServerSentEvent:
    if element is None:
        data = orjson.dumps({"pipeline_id": pipeline_id}).decode()
        return ServerSentEvent(data, event=REMOVED, id=str(seq))
    return ServerSentEvent(element.decode(), id=str(seq))


async def _changed_after(services: Services, seq: int, wanted: list[str]) -> list[str]:
    def read() -> set[str] | None:
        with services.db.connection() as connection:
            return change_queries.pipelines_changed_after(
                connection, after_seq=seq, pipeline_ids=wanted
            )

    changed = await run_in_threadpool(read)
    return wanted if changed is None else [p for p in wanted if p in changed]
