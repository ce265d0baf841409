"""A run page's live streams (Server-Sent Events): the run's statuses, and one step's log.

The run stream sends the whole state of the run (every status and time, by ID) at once and then
again after each committed change to the run: a run holds tens of items, so resending them all
is cheaper than being clever, and a reconnecting page is current after its first event.

The log stream sends a step's lines as they are stored, the same rows ShowPipelineLog reads
(secrets were masked before they were stored), polling the database every `LOG_POLL_SECONDS`
while the step runs; the browser only listens. Each event's `id` is the last line's number, so
a reconnection resumes after it; an `end` event says the step has ended and all was sent.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import Caller, Services
from stageline.api.element_updates import (
    HEARTBEAT_SECONDS,
    STREAM_SECONDS,
    ended,
    event_id,
)
from stageline.auth.roles import Role
from stageline.domain.errors import DomainError
from stageline.domain.statuses import STAGE_TERMINAL
from stageline.engine.lookups import find_pipeline, find_run, find_step
from stageline.store.queries import logs as log_queries
from stageline.web.run_page import RUN_PATH, read_run, run_state
from stageline.web.sessions import (
    ApiSession,
    caller_on,
    services_of,
)

router = APIRouter(include_in_schema=False)
RETRY_MS = 2000
LOG_POLL_SECONDS = 0.5
LOG_BATCH_LINES = 1000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get(RUN_PATH + "/stream")
async def run_stream(
    request: Request, session: ApiSession, project_id: str, pipeline_id: str, run_id: str
) -> Response:
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    await run_in_threadpool(read_run, caller, services, pipeline_id, run_id)  # 404s up front
    events = _run_events(caller, services, pipeline_id, run_id)
    return EventSourceResponse(events, ping=HEARTBEAT_SECONDS, headers=HEADERS)


async def _run_events(
    caller: Caller, services: Services, pipeline_id: str, run_id: str
) -> AsyncIterator[ServerSentEvent]:
    deadline = time.monotonic() + STREAM_SECONDS
    with services.live.watch(project_id=caller.project_id, run_id=run_id) as watch:
        yield ServerSentEvent(comment="run", retry=RETRY_MS)
        while not ended(deadline):
            try:
                detail, outputs = await run_in_threadpool(
                    read_run, caller, services, pipeline_id, run_id
                )
            except DomainError:  # the pipeline was deleted meanwhile: nothing more to show
                return
            yield ServerSentEvent(orjson.dumps(run_state(detail, outputs)).decode())
            while not ended(deadline):
                wait = min(HEARTBEAT_SECONDS, deadline - time.monotonic())
                if await watch.next(wait) or watch.take_overflow():
                    break


@router.get(RUN_PATH + "/steps/{step_run_id}/log")
async def log_stream(
    request: Request,
    session: ApiSession,
    project_id: str,
    pipeline_id: str,
    run_id: str,
    step_run_id: str,
) -> Response:
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    await run_in_threadpool(_read_lines, caller, services, pipeline_id, run_id, step_run_id, 0)
    last = event_id(request.headers.get("last-event-id"))
    start = 0 if last is None else last + 1
    events = _log_events(caller, services, (pipeline_id, run_id, step_run_id), start)
    return EventSourceResponse(events, ping=HEARTBEAT_SECONDS, headers=HEADERS)


def _read_lines(
    caller: Caller,
    services: Services,
    pipeline_id: str,
    run_id: str,
    step_run_id: str,
    start: int,
) -> tuple[list[tuple[int, str]], bool]:
    """The step's lines from `start` on (at most a batch), and whether the step has ended; read
    in one transaction, so that lines read with an ended status are all there are."""
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, run_id)
        step = find_step(session, run, step_run_id)
        ended = step.status in STAGE_TERMINAL
        lines = log_queries.read_log_lines(
            session, step_run_id=step.id, start=start, end=None, limit=LOG_BATCH_LINES, sort="asc"
        )
    return lines, ended


async def _log_events(
    caller: Caller, services: Services, ids: tuple[str, str, str], start: int
) -> AsyncIterator[ServerSentEvent]:
    deadline = time.monotonic() + STREAM_SECONDS
    yield ServerSentEvent(comment="log", retry=RETRY_MS)
    while not ended(deadline):
        try:
            lines, step_ended = await run_in_threadpool(_read_lines, caller, services, *ids, start)
        except DomainError:  # the pipeline was deleted meanwhile: nothing more to show
            return
        if lines:
            start = lines[-1][0] + 1
            data = orjson.dumps([content for _, content in lines]).decode()
            yield ServerSentEvent(data, event="lines", id=str(lines[-1][0]))
        if len(lines) == LOG_BATCH_LINES:
            continue
        if step_ended:
            yield ServerSentEvent("{}", event="end")
            return
        await asyncio.sleep(LOG_POLL_SECONDS)
