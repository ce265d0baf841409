"""Bulk writes for data generation (the benchmark's dataset): many rows per statement.

On PostgreSQL rows go in by `COPY … FROM STDIN` rather than the INSERT per row that psycopg's
executemany sends (10^6 benchmark runs in 142 s instead of 259 s). SQLite takes SQLAlchemy's
batched INSERT.
"""

from collections.abc import Sequence
from typing import Any, cast

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import JSON, Column, Table, insert, update
from sqlalchemy.orm import Session

from stageline.store.tables import Base, Pipeline


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts keyed by column name, all with the same keys) into `model`'s table;
    columns a row leaves out take their default, as with an ORM insert."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_rows(session, model, rows)
    else:
        session.execute(insert(model), list(rows))


def _copy_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    table = cast(Table, model.__table__)
    columns = list(table.columns)
    given = [column for column in columns if column.name in rows[0]]
    defaulted = [column for column in columns if column.name not in rows[0] and column.default]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(column.name) for column in given + defaulted),
    )
    is_json = [isinstance(column.type, JSON) for column in given + defaulted]
    raw = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row[column.name] for column in given]
            values += [_default(column) for column in defaulted]
            copy.write_row(
                [
                    orjson.dumps(value).decode() if as_json and value is not None else value
                    for value, as_json in zip(values, is_json, strict=True)
                ]
            )


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    return default.arg(None) if default.is_callable else default.arg


def point_latest_runs(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set `latest_run_id` and `run_counter` of many pipelines: rows of {id, latest_run_id,
    run_counter} (an ORM bulk UPDATE by primary key)."""
    if rows:
        session.execute(update(Pipeline), list(rows))
