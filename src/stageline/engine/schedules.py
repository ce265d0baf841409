"""Schedules fire runs (trigger `Scheduler`): exactly once per slot, whichever server fires it.

Each enabled schedule has a row with its next slot (`pipeline_schedule.next_fire_at`), written
with the pipeline (`plan_schedules`). One server process leads (`engine.leadership`) and, about
every second, starts a run for each row that is due. A run is started in one transaction with
the record of its slot (`schedule_fire`, unique per slot) and the compare-and-set of the row to
the schedule's next slot: if another process fired that slot or moved the row first, the
transaction ends without a run; if this process dies before it commits, neither is written and
the next leader fires the slot. After a downtime the latest missed slot fires once, never the
ones before it, and no slot from before the schedule was saved fires.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from stageline.domain.errors import InvalidInput, PipelineNotFound, RunNotAccepted
from stageline.domain.schedules import (
    Schedule,
    latest_slot,
    next_slot,
    parse_schedule,
    parse_schedules,
    slot_to_fire,
)
from stageline.domain.statuses import TriggerType
from stageline.engine.journal import Actor
from stageline.engine.leadership import Leadership
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.schemas.runs import RunCreate
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import schedules as schedule_queries
from stageline.store.queries.schedules import DueSchedule
from stageline.store.tables import Pipeline

log = logging.getLogger(__name__)

LEASE_NAME = "schedules"
SCHEDULER = Executor(user_id="", display_name="Scheduler")
FIRES_KEPT_MS = 7 * 86_400_000
"""Fired slots are kept this long, for the record; the compare-and-set alone refuses older."""
MAX_ATTEMPTS = 3
"""Ticks a slot whose run fails to start is tried in before it is skipped."""


def plan_schedules(
    session: Session, *, pipeline_id: str, schedules: Sequence[Mapping[str, Any]], now: int
) -> None:
    """Set when each schedule of a pipeline being saved is next due, in the transaction that
    saves it: its next slot after `now`. A schedule that was due and had not fired yet keeps
    that slot if it still has it (saving a pipeline at the minute its schedule fires does not
    lose the run). Raises `InvalidInput` for a bad schedule."""
    parsed = parse_schedules(schedules)
    existing = schedule_queries.read_schedule_plan(session, pipeline_id=pipeline_id)
    schedule_queries.replace_schedule_plan(
        session, pipeline_id=pipeline_id, plan=_plan(parsed, existing, now)
    )


def _plan(parsed: list[Schedule], existing: Mapping[str, int], now: int) -> dict[str, int | None]:
    plan: dict[str, int | None] = {}
    for schedule in parsed:
        if not schedule.fires:
            continue
        due = existing.get(schedule.uuid)
        if due is not None and due <= now and (latest_slot(schedule, now) or -1) >= due:
            plan[schedule.uuid] = due
        else:
            plan[schedule.uuid] = next_slot(schedule, now)
    return plan


@dataclass
class ScheduleFirer:
    """The schedules' periodic service: `run_once()` fires what is due, if this process leads."""

    engine: RunEngine
    leadership: Leadership
    batch: int = 100
    """Most due schedules fired per tick; the rest are due on the next one."""
    _caught_up_term: int = 0
    _failures: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def run_once(self) -> int:
        """Fire the due schedules; how many runs were started (or refused by a concurrency
        limit)."""
        if not self.leadership.hold():
            return 0
        if self._caught_up_term != self.leadership.term:
            self.catch_up()
            self._caught_up_term = self.leadership.term
        now = self.engine.clock()
        with self.engine.db.reader() as session:
            due = schedule_queries.list_due_schedules(session, now=now, limit=self.batch)
        return sum(self._fire(item, now) for item in due)

    def stop(self) -> None:
        self.leadership.release()

    def catch_up(self) -> int:
        """On becoming the leader: give rows to schedules that have none (pipelines saved before
        schedules fired at all) and drop rows no schedule has. Each pipeline that needs it is
        planned again under its row lock; how many were."""
        now = self.engine.clock()
        with self.engine.db.reader() as session:
            scheduled = schedule_queries.list_scheduled_pipelines(session)
            planned = schedule_queries.list_planned_pipelines(session)
        stale = set(planned)
        for pipeline_id, schedules in scheduled:
            stale.discard(pipeline_id)
            try:
                parsed = parse_schedules(schedules)
            except InvalidInput:
                parsed = []
            wanted = {s.uuid for s in parsed if s.fires and next_slot(s, now) is not None}
            if wanted != planned.get(pipeline_id, set()):
                stale.add(pipeline_id)
        for pipeline_id in stale:
            self._replan(pipeline_id, now)
        if stale:
            log.info("planned the schedules of %d pipeline(s) again", len(stale))
        return len(stale)

    def _replan(self, pipeline_id: str, now: int) -> None:
        with self.engine.db.writer() as session:
            pipeline_queries.lock_pipeline(session, pipeline_id=pipeline_id)
            pipeline = session.get(Pipeline, pipeline_id)
            if pipeline is None or pipeline.deleted:
                schedule_queries.delete_schedule_plans(session, pipeline_ids=[pipeline_id])
                return
            try:
                parsed = parse_schedules(pipeline.schedules)
            except InvalidInput as error:
                log.warning("pipeline %s: schedules ignored: %s", pipeline_id, error.message)
                parsed = []
            existing = schedule_queries.read_schedule_plan(session, pipeline_id=pipeline_id)
            plan = _plan(parsed, existing, now)
            schedule_queries.replace_schedule_plan(session, pipeline_id=pipeline_id, plan=plan)

    def _fire(self, item: DueSchedule, now: int) -> int:
        schedule = _find(item)
        slot = after = None
        if schedule is not None:
            slot = slot_to_fire(schedule, now=now, not_before=item.next_fire_at)
            after = next_slot(schedule, now) if schedule.fires else None
        if schedule is None or slot is None:
            self._advance(item, after)  # no such schedule any more, or nothing to fire
            return 0
        key = (item.pipeline_id, item.schedule_uuid, slot)

        def claim(session: Session, _run_id: str) -> None:
            # The run holds its pipeline's row locked, as a save of the pipeline does: a save
            # and a fire of its schedule happen one after the other, each seeing the other's row.
            fired = schedule_queries.record_fire(
                session,
                pipeline_id=item.pipeline_id,
                schedule_uuid=item.schedule_uuid,
                slot_at=slot,
                fired_at=now,
            )
            if not fired or not schedule_queries.advance_schedule(
                session,
                pipeline_id=item.pipeline_id,
                schedule_uuid=item.schedule_uuid,
                seen=item.next_fire_at,
                to=after,
            ):
                raise _AlreadyFired
            schedule_queries.delete_fires_before(
                session,
                pipeline_id=item.pipeline_id,
                schedule_uuid=item.schedule_uuid,
                before=slot - FIRES_KEPT_MS,
            )

        try:
            run_id = self.engine.start_run(
                project_id=item.project_id,
                pipeline_id=item.pipeline_id,
                request=RunCreate(),
                executor=SCHEDULER,
                trigger=TriggerType.SCHEDULER,
                actor=Actor("trigger", f"schedule {schedule.label}"),
                with_run=claim,
            )
        except _AlreadyFired:
            log.debug("slot %s of schedule %s fired elsewhere", slot, item.schedule_uuid)
            self._advance(item, after)  # a no-op unless the row still names a fired slot
            return 0
        except RunNotAccepted as refused:
            log.info("schedule %s of pipeline %s: %s", schedule.label, item.pipeline_id, refused)
            return 1
        except PipelineNotFound:
            self._replan(item.pipeline_id, now)
            return 0
        except Exception:
            attempts = self._failures.get(key, 0) + 1
            self._failures[key] = attempts
            log.exception(
                "schedule %s of pipeline %s could not start a run (attempt %d of %d)",
                schedule.label,
                item.pipeline_id,
                attempts,
                MAX_ATTEMPTS,
            )
            if attempts >= MAX_ATTEMPTS:
                del self._failures[key]
                self._advance(item, after)
            return 0
        self._failures.pop(key, None)
        log.info(
            "schedule %s of pipeline %s started run %s", schedule.label, item.pipeline_id, run_id
        )
        return 1

    def _advance(self, item: DueSchedule, to: int | None) -> None:
        with self.engine.db.writer() as session:
            schedule_queries.advance_schedule(
                session,
                pipeline_id=item.pipeline_id,
                schedule_uuid=item.schedule_uuid,
                seen=item.next_fire_at,
                to=to,
            )


class _AlreadyFired(Exception):
    """The slot fired in another process, or the schedule was saved meanwhile."""


def _find(item: DueSchedule) -> Schedule | None:
    """The due schedule as the pipeline stores it now; None if it is gone or does not parse."""
    for index, raw in enumerate(item.schedules):
        if isinstance(raw, dict) and raw.get("uuid") == item.schedule_uuid:
            try:
                return parse_schedule(raw, path=f"schedules[{index}]")
            except InvalidInput as error:
                log.warning("pipeline %s: %s", item.pipeline_id, error.message)
                return None
    return None
