"""Runs and their stages, jobs and steps; the batch-status read path."""

import functools
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Row, bindparam, func, select
from sqlalchemy.orm import Session, defer

from stageline.store.tables import JobRun, Pipeline, PipelineRun, StageRun, StepRun


@functools.lru_cache(maxsize=512)
def _latest_runs_sql(paramstyle: str, count: int) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return (
        "SELECT id, project_id, latest_run_id FROM pipeline"
        f" WHERE id IN ({', '.join([mark] * count)}) AND NOT deleted"
    )


def latest_runs_of(
    connection: Connection, *, pipeline_ids: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """pipeline_id -> (its project, its latest run or None) for the live pipelines among
    `pipeline_ids`; the caller checks the project.

    The batch-status read path when its cache misses: one pipeline row per ID through its
    primary key; the pipeline table does not grow with history, so neither does this. Plain
    SQL, because compiling an expanding IN of 100 parameters costs SQLAlchemy more than the
    query costs the database.
    """
    if not pipeline_ids:
        return {}
    sql = _latest_runs_sql(connection.dialect.paramstyle, len(pipeline_ids))
    rows = connection.exec_driver_sql(sql, tuple(pipeline_ids)).all()
    return {row[0]: (row[1], row[2]) for row in rows}


LATEST_RUN_COLUMNS = (
    PipelineRun.id,
    PipelineRun.pipeline_id,
    PipelineRun.project_id,
    PipelineRun.executor_id,
    PipelineRun.executor_name,
    PipelineRun.stage_summary,
    PipelineRun.status,
    PipelineRun.run_number,
    PipelineRun.trigger_type,
    PipelineRun.build_params,
    PipelineRun.artifact_params,
    PipelineRun.start_time,
    PipelineRun.end_time,
)
"""What a PipelineLatestRun element is made of (its stages come from `stage_summary`)."""


def read_runs_for_status(connection: Connection, *, run_ids: Sequence[str]) -> list[Row[Any]]:
    """Rows with the LATEST_RUN_COLUMNS of these runs, named like PipelineRun's attributes."""
    return list(connection.execute(select(*LATEST_RUN_COLUMNS).where(PipelineRun.id.in_(run_ids))))


def insert_run_tree(
    session: Session,
    run: PipelineRun,
    stages: Sequence[StageRun],
    jobs: Sequence[JobRun],
    steps: Sequence[StepRun],
) -> None:
    session.add(run)
    session.flush()
    session.add_all(stages)
    session.flush()
    session.add_all(jobs)
    session.flush()
    session.add_all(steps)
    session.flush()


def read_run(
    session: Session,
    *,
    run_id: str,
    pipeline_id: str | None = None,
    for_update: bool = False,
    without_payload: bool = False,
) -> PipelineRun | None:
    """A run; `without_payload` leaves its definition, sources and variables unloaded (they load
    on first access), which is what status changes need."""
    query = select(PipelineRun).where(PipelineRun.id == run_id)
    if pipeline_id is not None:
        query = query.where(PipelineRun.pipeline_id == pipeline_id)
    if for_update:
        query = query.with_for_update()
    if without_payload:
        query = query.options(
            defer(PipelineRun.definition), defer(PipelineRun.sources), defer(PipelineRun.variables)
        )
    return session.scalar(query)


def read_run_by_number(
    session: Session, *, pipeline_id: str, run_number: int
) -> PipelineRun | None:
    return session.scalar(
        select(PipelineRun).where(
            PipelineRun.pipeline_id == pipeline_id, PipelineRun.run_number == run_number
        )
    )


def list_runs(
    session: Session,
    *,
    pipeline_id: str,
    statuses: list[str] | None,
    trigger_types: list[str] | None,
    executor_ids: list[str] | None,
    offset: int,
    limit: int,
    sort_key: Literal["start_time", "update_time"],
    sort_dir: Literal["asc", "desc"],
) -> tuple[int, list[PipelineRun]]:
    query = select(PipelineRun).where(PipelineRun.pipeline_id == pipeline_id)
    if statuses:
        query = query.where(PipelineRun.status.in_(statuses))
    if trigger_types:
        query = query.where(PipelineRun.trigger_type.in_(trigger_types))
    if executor_ids:
        query = query.where(PipelineRun.executor_id.in_(executor_ids))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = PipelineRun.start_time if sort_key == "start_time" else PipelineRun.updated_at
    order = column.asc() if sort_dir == "asc" else column.desc()
    tiebreak = PipelineRun.run_number.asc() if sort_dir == "asc" else PipelineRun.run_number.desc()
    runs = session.scalars(query.order_by(order, tiebreak).offset(offset).limit(limit))
    return total, list(runs)


def list_run_ids(
    session: Session,
    *,
    statuses: Sequence[str],
    pipeline_id: str | None = None,
    oldest_first: bool = False,
) -> list[str]:
    """IDs of the runs in one of `statuses`, of one pipeline or of all."""
    query = select(PipelineRun.id).where(PipelineRun.status.in_(statuses))
    if pipeline_id is not None:
        query = query.where(PipelineRun.pipeline_id == pipeline_id)
    if oldest_first:
        query = query.order_by(PipelineRun.run_number)
    return list(session.scalars(query))


def count_runs(
    session: Session, *, pipeline_id: str, statuses: Sequence[str], exclude: str | None = None
) -> int:
    query = select(func.count()).where(
        PipelineRun.pipeline_id == pipeline_id, PipelineRun.status.in_(statuses)
    )
    if exclude is not None:
        query = query.where(PipelineRun.id != exclude)
    return session.scalar(query) or 0


# The engine's hottest reads are built once, with bound parameters: building a statement and
# its cache key costs SQLAlchemy more than the database needs to answer it.
_STAGES = select(StageRun).where(StageRun.run_id == bindparam("run_id")).order_by(StageRun.sequence)
_JOBS = select(JobRun).where(JobRun.run_id == bindparam("run_id")).order_by(JobRun.sequence)
_STEPS = select(StepRun).where(StepRun.run_id == bindparam("run_id")).order_by(StepRun.sequence)
_JOB_STEPS = (
    select(StepRun).where(StepRun.job_run_id == bindparam("job_run_id")).order_by(StepRun.sequence)
)


def list_stages(session: Session, *, run_id: str) -> list[StageRun]:
    return list(session.scalars(_STAGES, {"run_id": run_id}))


def list_jobs(session: Session, *, run_id: str) -> list[JobRun]:
    return list(session.scalars(_JOBS, {"run_id": run_id}))


def list_steps(session: Session, *, run_id: str) -> list[StepRun]:
    return list(session.scalars(_STEPS, {"run_id": run_id}))


def list_job_steps(session: Session, *, job_run_id: str) -> list[StepRun]:
    return list(session.scalars(_JOB_STEPS, {"job_run_id": job_run_id}))


def read_job(session: Session, *, job_run_id: str) -> JobRun | None:
    return session.get(JobRun, job_run_id)


def read_step(session: Session, *, step_run_id: str) -> StepRun | None:
    return session.get(StepRun, step_run_id)


def reviews_past_deadline(session: Session, *, now: int) -> list[tuple[str, str]]:
    """(run_id, step_run_id) of paused manual reviews whose time is up."""
    rows = session.execute(select(StepRun.run_id, StepRun.id).where(StepRun.deadline_at < now))
    return [(row[0], row[1]) for row in rows]


JOB_CONTEXT_COLUMNS = (
    PipelineRun.id.label("run_id"),
    PipelineRun.project_id,
    PipelineRun.run_number,
    PipelineRun.trigger_type,
    PipelineRun.executor_id,
    PipelineRun.executor_name,
    PipelineRun.build_params,
    PipelineRun.variables,
    PipelineRun.sources,
    Pipeline.id.label("pipeline_id"),
    Pipeline.name.label("pipeline_name"),
    StageRun.name.label("stage_name"),
)
"""What an agent is told about a job's run, pipeline and stage (`engine.dispatcher`)."""


_JOB_CONTEXT = (
    select(*JOB_CONTEXT_COLUMNS)
    .select_from(JobRun)
    .join(PipelineRun, PipelineRun.id == JobRun.run_id)
    .join(StageRun, StageRun.id == JobRun.stage_run_id)
    .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
    .where(JobRun.id == bindparam("job_run_id"))
)
_RUN_OF_JOB = (
    select(PipelineRun)
    .join(JobRun, JobRun.run_id == PipelineRun.id)
    .where(JobRun.id == bindparam("job_run_id"))
    .with_for_update(of=PipelineRun)
    .options(
        defer(PipelineRun.definition), defer(PipelineRun.sources), defer(PipelineRun.variables)
    )
)


def read_job_context(session: Session, *, job_run_id: str) -> Row[Any]:
    """The JOB_CONTEXT_COLUMNS of a job, in one statement (rather than loading three rows)."""
    return session.execute(_JOB_CONTEXT, {"job_run_id": job_run_id}).one()


def read_run_of_job(session: Session, *, job_run_id: str) -> PipelineRun | None:
    """The run a job belongs to, locked, its payload left unloaded: one statement instead of
    finding the run ID first (the agents' reports take this path)."""
    return session.scalar(_RUN_OF_JOB, {"job_run_id": job_run_id})
