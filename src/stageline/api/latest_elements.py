"""The batch-status elements of some pipelines, strictly fresh: shared by every route that
answers with them (the batch-status POST, its stream)."""

from starlette.concurrency import run_in_threadpool

from stageline.api.deps import Services
from stageline.api.status_cache import Entry


async def current_elements(
    services: Services, project_id: str, pipeline_ids: list[str]
) -> tuple[int, dict[str, bytes | None]]:
    """The change log's mark, and the element of each pipeline current up to it (None for a
    pipeline that has no run, is deleted, or is not in `project_id`).

    What did not change since this process last rendered it is answered from memory
    (`LatestRuns`) once the change log's tail, read after the call began, says so (`LogTail`).
    The database is never read on the event loop, so one slow statement never holds up the
    other requests this process serves.
    """
    mark, found = await fresh_entries(services, pipeline_ids)
    return mark, {
        pipeline_id: entry.element if entry.project_id == project_id else None
        for pipeline_id, entry in found.items()
    }


async def fresh_entries(
    services: Services, pipeline_ids: list[str], freshness: tuple[int, int] | None = None
) -> tuple[int, dict[str, Entry]]:
    """The mark and the entries current up to it; `freshness` is the (mark, generation) of a
    catch-up that began after the request arrived, when the caller has awaited one already."""
    latest_runs = services.latest_runs
    mark, generation = freshness or await services.log_tail.fresh()
    found, missing = latest_runs.lookup(pipeline_ids)
    if missing:
        found |= await run_in_threadpool(_render, services, missing, mark, generation)
    return mark, found


def _render(services: Services, missing: list[str], mark: int, generation: int) -> dict[str, Entry]:
    with services.db.connection() as connection:
        return services.latest_runs.render(connection, missing, mark, generation)
