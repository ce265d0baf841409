"""Pipeline rows: create, read, list, update and soft-delete."""

from typing import Any, Literal

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from stageline.store.tables import Pipeline, PipelineRun


def insert_pipeline(session: Session, pipeline: Pipeline) -> Pipeline:
    session.add(pipeline)
    session.flush()
    return pipeline


def read_pipeline(
    session: Session, *, project_id: str, pipeline_id: str, for_update: bool = False
) -> Pipeline | None:
    """A live (not deleted) pipeline of the project, or None."""
    query = select(Pipeline).where(
        Pipeline.id == pipeline_id,
        Pipeline.project_id == project_id,
        Pipeline.deleted.is_(False),
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


SORT_COLUMNS = {
    "name": Pipeline.name,
    "create_time": Pipeline.created_at,
    "update_time": Pipeline.updated_at,
}


def list_pipelines(
    session: Session,
    *,
    project_id: str,
    name: str | None,
    is_publish: bool | None,
    creator_ids: list[str] | None,
    latest_statuses: list[str] | None,
    offset: int,
    limit: int,
    sort_key: Literal["name", "create_time", "update_time"],
    sort_dir: Literal["asc", "desc"],
) -> tuple[int, list[tuple[Pipeline, PipelineRun | None]]]:
    """(total, page) of live pipelines, each with its latest run (None if never run)."""
    query = (
        select(Pipeline, PipelineRun)
        .outerjoin(PipelineRun, PipelineRun.id == Pipeline.latest_run_id)
        .where(Pipeline.project_id == project_id, Pipeline.deleted.is_(False))
    )
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Pipeline.name.ilike(f"%{escaped}%", escape="\\"))
    if is_publish is not None:
        query = query.where(Pipeline.is_publish.is_(is_publish))
    if creator_ids:
        query = query.where(Pipeline.creator_id.in_(creator_ids))
    if latest_statuses:
        query = query.where(PipelineRun.status.in_(latest_statuses))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORT_COLUMNS[sort_key]
    order = column.asc() if sort_dir == "asc" else column.desc()
    rows = session.execute(query.order_by(order, Pipeline.id).offset(offset).limit(limit))
    return total, [(row[0], row[1]) for row in rows]


def update_pipeline(session: Session, pipeline: Pipeline, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(pipeline, key, value)
    session.flush()


def next_run_number(session: Session, *, pipeline_id: str, run_id: str) -> int:
    """Hand out the pipeline's next run number and make `run_id` its latest run.

    One UPDATE under the row lock: concurrent starts queue on it, and a rolled-back start gives
    its number back, so numbers are gap-free.
    """
    number = session.scalar(
        update(Pipeline)
        .where(Pipeline.id == pipeline_id)
        .values(run_counter=Pipeline.run_counter + 1, latest_run_id=run_id)
        .returning(Pipeline.run_counter)
    )
    assert number is not None, "pipeline row vanished under its own lock"
    return number


def name_taken(session: Session, *, project_id: str, name: str, except_id: str | None) -> bool:
    query = select(Pipeline.id).where(
        Pipeline.project_id == project_id, Pipeline.name == name, Pipeline.deleted.is_(False)
    )
    if except_id is not None:
        query = query.where(Pipeline.id != except_id)
    return session.scalar(query.limit(1)) is not None


_CONCURRENCY_CONTROL = select(Pipeline.concurrency_control).where(
    Pipeline.id == bindparam("pipeline_id")
)


def read_concurrency_control(session: Session, *, pipeline_id: str) -> dict[str, Any] | None:
    control: dict[str, Any] | None = session.scalar(
        _CONCURRENCY_CONTROL, {"pipeline_id": pipeline_id}
    )
    return control


def lock_pipeline(session: Session, *, pipeline_id: str) -> None:
    """Hold the pipeline row until the transaction ends (serializes its run starts)."""
    session.execute(select(Pipeline.id).where(Pipeline.id == pipeline_id).with_for_update())
