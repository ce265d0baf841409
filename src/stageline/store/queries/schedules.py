"""Schedule rows: when each enabled schedule is next due, and the slots that have fired."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stageline.store.tables import Pipeline, PipelineSchedule, ScheduleFire


@dataclass(frozen=True)
class DueSchedule:
    project_id: str
    pipeline_id: str
    schedule_uuid: str
    next_fire_at: int
    schedules: list[Any]
    """The pipeline's schedules as stored, this one among them."""


def read_schedule_plan(session: Session, *, pipeline_id: str) -> dict[str, int]:
    """The pipeline's schedules that have a row: UUID -> next slot."""
    rows = session.execute(
        select(PipelineSchedule.schedule_uuid, PipelineSchedule.next_fire_at).where(
            PipelineSchedule.pipeline_id == pipeline_id
        )
    )
    return dict(rows.tuples().all())


def replace_schedule_plan(
    session: Session, *, pipeline_id: str, plan: dict[str, int | None]
) -> None:
    """Make the pipeline's due times `plan` (schedule UUID -> next slot); UUIDs whose value is
    None, and those not in `plan`, get no row. The row of a UUID whose due time is unchanged
    is left alone."""
    wanted = {uuid: at for uuid, at in plan.items() if at is not None}
    rows = session.scalars(
        select(PipelineSchedule).where(PipelineSchedule.pipeline_id == pipeline_id)
    ).all()
    for row in rows:
        if row.schedule_uuid not in wanted:
            session.delete(row)
        else:
            row.next_fire_at = wanted.pop(row.schedule_uuid)
    session.add_all(
        PipelineSchedule(pipeline_id=pipeline_id, schedule_uuid=uuid, next_fire_at=at)
        for uuid, at in wanted.items()
    )
    session.flush()


def list_due_schedules(session: Session, *, now: int, limit: int) -> list[DueSchedule]:
    """Schedules of live pipelines whose next slot is at or before `now`, earliest first."""
    rows = session.execute(
        select(
            Pipeline.project_id,
            PipelineSchedule.pipeline_id,
            PipelineSchedule.schedule_uuid,
            PipelineSchedule.next_fire_at,
            Pipeline.schedules,
        )
        .join(Pipeline, Pipeline.id == PipelineSchedule.pipeline_id)
        .where(PipelineSchedule.next_fire_at <= now, Pipeline.deleted.is_(False))
        .order_by(PipelineSchedule.next_fire_at)
        .limit(limit)
    )
    return [DueSchedule(*row) for row in rows]


def list_planned_pipelines(session: Session) -> dict[str, set[str]]:
    """Schedule UUIDs that have a row, by pipeline (deleted pipelines included)."""
    planned: dict[str, set[str]] = {}
    for pipeline_id, uuid in session.execute(
        select(PipelineSchedule.pipeline_id, PipelineSchedule.schedule_uuid)
    ):
        planned.setdefault(pipeline_id, set()).add(uuid)
    return planned


def list_scheduled_pipelines(session: Session) -> list[tuple[str, list[Any]]]:
    """(ID, schedules) of every live pipeline."""
    rows = session.execute(
        select(Pipeline.id, Pipeline.schedules).where(Pipeline.deleted.is_(False))
    )
    return [(pipeline_id, schedules) for pipeline_id, schedules in rows if schedules]


def advance_schedule(
    session: Session, *, pipeline_id: str, schedule_uuid: str, seen: int, to: int | None
) -> bool:
    """Compare-and-set: move the schedule's next slot from `seen` to `to` (no row when None).
    False if another server moved it first, or the pipeline was saved meanwhile."""
    where = (
        PipelineSchedule.pipeline_id == pipeline_id,
        PipelineSchedule.schedule_uuid == schedule_uuid,
        PipelineSchedule.next_fire_at == seen,
    )
    if to is None:
        result = session.execute(delete(PipelineSchedule).where(*where))
    else:
        result = session.execute(update(PipelineSchedule).where(*where).values(next_fire_at=to))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_schedule_plans(session: Session, *, pipeline_ids: list[str]) -> None:
    session.execute(delete(PipelineSchedule).where(PipelineSchedule.pipeline_id.in_(pipeline_ids)))


def record_fire(
    session: Session, *, pipeline_id: str, schedule_uuid: str, slot_at: int, fired_at: int
) -> bool:
    """Record that a slot fired; False if it had fired before. One statement, atomic on both
    databases (a second insert of the same slot waits for the first to commit, then does
    nothing); read from RETURNING, as psycopg counts no rows of INSERT … ON CONFLICT."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ScheduleFire.__table__)
        .values(
            pipeline_id=pipeline_id,
            schedule_uuid=schedule_uuid,
            slot_at=slot_at,
            fired_at=fired_at,
        )
        .on_conflict_do_nothing()
        .returning(ScheduleFire.slot_at)
    )
    return session.execute(statement).first() is not None


def delete_fires_before(
    session: Session, *, pipeline_id: str, schedule_uuid: str, before: int
) -> None:
    """Forget the fired slots of a schedule older than `before`: the compare-and-set of its
    next slot already refuses them, so only the recent ones are kept, for the record."""
    session.execute(
        delete(ScheduleFire).where(
            ScheduleFire.pipeline_id == pipeline_id,
            ScheduleFire.schedule_uuid == schedule_uuid,
            ScheduleFire.slot_at < before,
        )
    )
