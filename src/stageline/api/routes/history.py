"""A run's history: every status change of the run, its stages, jobs and steps, with who made it
(`GET /v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/history`)."""

from typing import Annotated

from fastapi import Query

from stageline.api.deps import ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router
from stageline.engine.lookups import find_pipeline, find_run
from stageline.schemas.history import RunHistory, StatusChangeRead
from stageline.store.queries import changes as change_queries
from stageline.store.queries import runs as run_queries

router = v5_router("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs")
MAX_PAGE = 1000


@router.get("/{pipeline_run_id}/history", responses=error_responses(400))
def show_pipeline_run_history(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> RunHistory:
    """Oldest first, `limit` at a time after `after_seq`; kept as long as the change log keeps
    changes (STAGELINE_CHANGE_LOG_RETENTION_DAYS)."""
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, pipeline_run_id)
        rows = change_queries.list_run_changes(
            session, run_id=run.id, after_seq=after_seq, limit=limit + 1
        )
        names = {s.id: s.name for s in run_queries.list_stages(session, run_id=run.id)}
        names |= {j.id: j.name for j in run_queries.list_jobs(session, run_id=run.id)}
        names |= {s.id: s.name for s in run_queries.list_steps(session, run_id=run.id)}
    page = rows[:limit]
    return RunHistory(
        pipeline_run_id=run.id,
        changes=[
            StatusChangeRead(
                seq=row.seq,
                entity=row.entity,
                entity_id=row.entity_id,
                entity_name=names.get(row.entity_id),
                from_status=row.from_status,
                to_status=row.to_status,
                time=row.at,
                actor_type=row.actor_kind,
                actor=row.actor,
            )
            for row in page
        ],
        next_seq=page[-1].seq if len(rows) > limit else None,
    )
