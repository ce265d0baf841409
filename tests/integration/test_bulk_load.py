"""The benchmark's bulk load (COPY on PostgreSQL) stores what an ORM insert stores."""

from typing import Any

from sqlalchemy import insert, select

from stageline.auth import accounts
from stageline.store.database import Database
from stageline.store.queries import bulk
from stageline.store.tables import Base, Pipeline, PipelineRun, StageRun


def _pipeline(pipeline_id: str, project_id: str) -> dict[str, Any]:
    return {
        "id": pipeline_id,
        "project_id": project_id,
        "name": "bulk-loaded",
        "definition": '{"stages": []}',
        "sources": [{"type": "code", "params": {"git_url": "https://x/y.git", "n": None}}],
        "creator_id": "c" * 32,
        "updater_id": "c" * 32,
        "created_at": 1_700_000_000_000,
        "updated_at": 1_700_000_000_001,
    }


def _run(run_id: str, pipeline_id: str, project_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "pipeline_id": pipeline_id,
        "project_id": project_id,
        "run_number": 1,
        "status": "COMPLETED",
        "trigger_type": "Manual",
        "executor_id": "c" * 32,
        "executor_name": "Bulk «robot» \\ \t tab",
        "message": None,
        "build_params": {"commit_id": "a" * 40, "tag": None, "message": "line\nbreak"},
        "artifact_params": None,
        "definition": '{"stages": []}',
        "stage_summary": [{"id": "s", "status": "COMPLETED", "end_time": None}],
        "start_time": 1_700_000_000_000,
        "end_time": None,
        "updated_at": 1_700_000_000_000,
    }


def _stage(stage_id: str, run_id: str) -> dict[str, Any]:
    return {
        "id": stage_id,
        "run_id": run_id,
        "sequence": 0,
        "name": "Build",
        "identifier": "BUILD",
        "status": "INIT",
        "start_time": None,
        "end_time": None,
    }


def _load(db: Database, rows: dict[type[Base], dict[str, Any]], *, bulk_load: bool) -> None:
    with db.writer() as session:
        for model, row in rows.items():
            if bulk_load:
                bulk.insert_rows(session, model, [row])
            else:
                session.execute(insert(model), [row])


def _read(db: Database, model: type[Base], row_id: str) -> dict[str, Any]:
    with db.connection() as connection:
        found = connection.execute(select(model.__table__).where(model.__table__.c.id == row_id))
        values = dict(found.one()._mapping)
    return {k: v for k, v in values.items() if k not in {"id", "pipeline_id", "run_id"}}


def test_bulk_loaded_rows_read_back_as_orm_inserted_ones(db: Database) -> None:
    project_id = accounts.create_project(db, name="bulk-load", now=1)
    ids = {
        way: {"pipeline": way[0] * 32, "run": way[0] * 31 + "r", "stage": way[0] * 31 + "s"}
        for way in ("bulk", "orm")
    }
    for way, bulk_load in (("bulk", True), ("orm", False)):
        own = ids[way]
        _load(
            db,
            {
                Pipeline: _pipeline(own["pipeline"], project_id),
                PipelineRun: _run(own["run"], own["pipeline"], project_id),
                StageRun: _stage(own["stage"], own["run"]),
            },
            bulk_load=bulk_load,
        )
    for model, key in ((Pipeline, "pipeline"), (PipelineRun, "run"), (StageRun, "stage")):
        loaded, inserted = (_read(db, model, ids[way][key]) for way in ("bulk", "orm"))
        assert loaded == inserted
    assert _read(db, StageRun, ids["bulk"]["stage"])["depends_on"] == []
