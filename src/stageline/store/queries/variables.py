"""Pipelines' and runs' stored variables, and pipelines' triggers, page by page: what re-sealing
secret values walks."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stageline.store.tables import Pipeline, PipelineRun

Holder = type[Pipeline] | type[PipelineRun]
"""A table with a `variables` column."""


def variables_page(
    session: Session, table: Holder, *, after: str, limit: int
) -> list[tuple[str, list[Any]]]:
    """(id, variables) of up to `limit` rows with an ID above `after`, in ID order (keyset
    paging: each page is one index range scan, however large the table)."""
    rows = session.execute(
        select(table.id, table.variables).where(table.id > after).order_by(table.id).limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def write_variables(session: Session, table: Holder, *, row_id: str, variables: list[Any]) -> None:
    session.execute(update(table).where(table.id == row_id).values(variables=variables))


def triggers_page(session: Session, *, after: str, limit: int) -> list[tuple[str, list[Any]]]:
    """(id, triggers) of up to `limit` pipelines with an ID above `after`, in ID order."""
    rows = session.execute(
        select(Pipeline.id, Pipeline.triggers)
        .where(Pipeline.id > after)
        .order_by(Pipeline.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def write_triggers(session: Session, *, pipeline_id: str, triggers: list[Any]) -> None:
    session.execute(update(Pipeline).where(Pipeline.id == pipeline_id).values(triggers=triggers))
