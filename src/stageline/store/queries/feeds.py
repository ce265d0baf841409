"""What feeds read besides the batch-status cache: latest runs on a branch, and what build
monitors (cc.xml, badges) show of each pipeline.

A pipeline's latest run on a branch is the highest `run_number` among its runs with that
`branch`; the index (pipeline_id, branch, run_number) answers it per pipeline without reading
the pipeline's history.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from stageline.domain.statuses import RUN_BUILT
from stageline.store.queries.runs import LATEST_RUN_COLUMNS
from stageline.store.tables import Pipeline, PipelineRun


def _latest_on_branch(pipeline_ids: Sequence[str], branch: str) -> Any:
    """(pipeline_id, run_number) of each pipeline's latest run on `branch`."""
    return (
        select(PipelineRun.pipeline_id, func.max(PipelineRun.run_number).label("run_number"))
        .where(PipelineRun.pipeline_id.in_(pipeline_ids), PipelineRun.branch == branch)
        .group_by(PipelineRun.pipeline_id)
        .subquery()
    )


def latest_runs_on_branch(
    connection: Connection, *, project_id: str, pipeline_ids: Sequence[str], branch: str
) -> list[Row[Any]]:
    """LATEST_RUN_COLUMNS of the latest run on `branch` of each live pipeline of the project
    among `pipeline_ids` that has one; in no particular order."""
    if not pipeline_ids:
        return []
    latest = _latest_on_branch(pipeline_ids, branch)
    query = (
        select(*LATEST_RUN_COLUMNS)
        .join(
            latest,
            and_(
                PipelineRun.pipeline_id == latest.c.pipeline_id,
                PipelineRun.run_number == latest.c.run_number,
            ),
        )
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(Pipeline.project_id == project_id, Pipeline.deleted.is_(False))
    )
    return list(connection.execute(query))


@dataclass(frozen=True)
class RunGlance:
    run_id: str
    status: str
    run_number: int
    start_time: int
    end_time: int | None


@dataclass(frozen=True)
class MonitoredPipeline:
    pipeline_id: str
    name: str
    created_at: int
    latest: RunGlance | None
    """The latest run (on the branch asked for), whatever its status."""
    last_built: RunGlance | None
    """The latest run that started and ended (`RUN_BUILT`); the same as `latest` unless that
    one is still going or was never started."""
    schedules: list[dict[str, Any]]
    """As stored: when its schedules fire next is the domain's to say."""


_GLANCE = (
    PipelineRun.pipeline_id,
    PipelineRun.id,
    PipelineRun.status,
    PipelineRun.run_number,
    PipelineRun.start_time,
    PipelineRun.end_time,
)


def _glance(row: Row[Any]) -> RunGlance:
    return RunGlance(row.id, row.status, row.run_number, row.start_time, row.end_time)


def read_monitored_pipelines(
    connection: Connection,
    *,
    project_id: str,
    pipeline_ids: Sequence[str] | None,
    branch: str | None,
) -> list[MonitoredPipeline]:
    """The project's live pipelines (those among `pipeline_ids`, or all), by name, each with its
    latest run and its last finished build, on `branch` if given.

    Three statements whatever the number of pipelines, plus one per pipeline whose latest run
    has not ended (its last build is then an earlier run, found walking back its runs).
    """
    columns = (Pipeline.id, Pipeline.name, Pipeline.created_at, Pipeline.latest_run_id)
    query = select(*columns, Pipeline.schedules).where(
        Pipeline.project_id == project_id, Pipeline.deleted.is_(False)
    )
    if pipeline_ids is not None:
        query = query.where(Pipeline.id.in_(pipeline_ids))
    pipelines = list(connection.execute(query.order_by(Pipeline.name, Pipeline.id)))
    ids = [row.id for row in pipelines]
    latest: dict[str, RunGlance] = {}
    if ids and branch is None:
        run_ids = [row.latest_run_id for row in pipelines if row.latest_run_id is not None]
        if run_ids:
            rows = connection.execute(select(*_GLANCE).where(PipelineRun.id.in_(run_ids)))
            latest = {row.pipeline_id: _glance(row) for row in rows}
    elif ids and branch is not None:
        on_branch = _latest_on_branch(ids, branch)
        rows = connection.execute(
            select(*_GLANCE).join(
                on_branch,
                and_(
                    PipelineRun.pipeline_id == on_branch.c.pipeline_id,
                    PipelineRun.run_number == on_branch.c.run_number,
                ),
            )
        )
        latest = {row.pipeline_id: _glance(row) for row in rows}
    monitored = []
    for row in pipelines:
        run = latest.get(row.id)
        built = run
        if run is not None and run.status not in RUN_BUILT:
            built = _last_built(connection, pipeline_id=row.id, branch=branch)
        monitored.append(
            MonitoredPipeline(row.id, row.name, row.created_at, run, built, row.schedules or [])
        )
    return monitored


def _last_built(
    connection: Connection, *, pipeline_id: str, branch: str | None
) -> RunGlance | None:
    query = select(*_GLANCE).where(
        PipelineRun.pipeline_id == pipeline_id, PipelineRun.status.in_(RUN_BUILT)
    )
    if branch is not None:
        query = query.where(PipelineRun.branch == branch)
    row = connection.execute(query.order_by(PipelineRun.run_number.desc()).limit(1)).first()
    return None if row is None else _glance(row)
