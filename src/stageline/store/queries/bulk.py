"""Bulk writes for data generation (the benchmark's dataset): many rows per statement."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from stageline.store.tables import Base, Pipeline


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """An ORM bulk INSERT: SQLAlchemy batches it into multi-row VALUES statements."""
    if rows:
        session.execute(insert(model), list(rows))


def point_latest_runs(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set `latest_run_id` and `run_counter` of many pipelines: rows of {id, latest_run_id,
    run_counter} (an ORM bulk UPDATE by primary key)."""
    if rows:
        session.execute(update(Pipeline), list(rows))
