"""Batch-status elements as they change: what the status stream and the dashboard's wall send.

Both watch committed changes (`api.live`), read afresh the elements of the pipelines that
changed (`api.latest_elements`), and pass on those that differ from what they last sent. Each
update carries the change-log sequence number its element is current up to, which a client
sends back (`Last-Event-ID`) to resume: it is the highest sequence number among the changes
delivered so far, never the log's newest (a change with a lower number to another pipeline may
still be on its way to the watch, and resuming after it would lose it).
"""

import time
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

from starlette.concurrency import run_in_threadpool

from stageline.api.deps import Services
from stageline.api.latest_elements import current_elements
from stageline.api.live import Watch
from stageline.domain.errors import InvalidInput, excerpt
from stageline.store.queries import changes as change_queries

HEARTBEAT_SECONDS = 15.0
"""How long a watch waits before it looks again (and the streams' heartbeat)."""
STREAM_SECONDS = 60.0
"""How long a stream lasts: then it ends, and the client reconnects with `Last-Event-ID` (as
browsers do by themselves), losing nothing and showing its credentials again, so that a revoked
token, a removed member or an ended session stops reading within this bound."""


def event_id(value: str | None, *, name: str = "Last-Event-ID") -> int | None:
    """A resumption point (a change sequence number) as a client sends it back; `InvalidInput`
    for anything else."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"{name}: {excerpt(value)!r} is not an event ID of this stream")
    return int(value)


def ended(deadline: float) -> bool:
    return time.monotonic() >= deadline


class Update(NamedTuple):
    pipeline_id: str
    element: bytes | None
    """None: the pipeline has no latest run to show (deleted, or never run)."""
    seq: int


async def element_updates(
    services: Services,
    watch: Watch,
    pipeline_ids: Callable[[], list[str]],
    *,
    after: int | None,
    current_first: bool,
) -> AsyncIterator[list[Update]]:
    """Batches of updates for the watched pipelines: first, with `after` (a resumption), those
    that changed since sequence `after` (all of them when the change log no longer reaches back
    that far); else, with `current_first`, the element of each that has one; then, as changes
    arrive, each element that changed, for `STREAM_SECONDS`. `pipeline_ids` lists the watched
    pipelines, in the order updates are sent (it is called on a worker thread)."""
    project_id = watch.project_id
    deadline = time.monotonic() + STREAM_SECONDS
    sent: dict[str, bytes | None] = {}
    if after is not None:
        # Those changed since `after` are read before the elements are: a change in between
        # to another pipeline comes through the watch, so the batch is current up to `after`
        # only, whatever the elements' mark.
        seq = after
        first = await run_in_threadpool(_changed_after, services, after, pipeline_ids)
    else:
        seq, first = 0, (await run_in_threadpool(pipeline_ids) if current_first else [])
    if first:
        mark, elements = await current_elements(services, project_id, first)
        seq = mark if after is None else seq
        sent = {pipeline_id: elements[pipeline_id] for pipeline_id in first}
        yield [
            Update(pipeline_id, element, seq)
            for pipeline_id, element in sent.items()
            if element is not None or after is not None
        ]
    while not ended(deadline):
        changes = await watch.next(min(HEARTBEAT_SECONDS, deadline - time.monotonic()))
        overflowed = watch.take_overflow()
        if not changes and not overflowed:
            continue
        seq = max([seq, *(change.seq for change in changes)])
        if overflowed:
            changed = await run_in_threadpool(pipeline_ids)
        else:
            changed = list(dict.fromkeys(change.pipeline_id for change in changes))
        _, elements = await current_elements(services, project_id, changed)
        batch = [Update(p, elements[p], seq) for p in changed if sent.get(p) != elements[p]]
        sent.update({update.pipeline_id: update.element for update in batch})
        if batch:
            yield batch


def _changed_after(
    services: Services, after: int, pipeline_ids: Callable[[], list[str]]
) -> list[str]:
    wanted = pipeline_ids()
    with services.db.connection() as connection:
        changed = change_queries.pipelines_changed_after(
            connection, after_seq=after, pipeline_ids=wanted
        )
    return wanted if changed is None else [p for p in wanted if p in changed]
