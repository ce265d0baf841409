"""Schedules fire runs: the firer's tick driven with a clock the test sets, on both databases.

Pipelines are saved through the API (real time), and their schedules' first slot lies about
twelve hours ahead, so the server's own firer, which runs on the real clock, never reaches it
during the tests; the firer here jumps its clock there. Each firer leads a lease of its own.
"""

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from stageline.engine.clock import system_clock
from stageline.engine.leadership import Leadership, LeasePeriods
from stageline.engine.runs import RunEngine
from stageline.engine.schedules import ScheduleFirer, plan_schedules
from stageline.store.database import Database
from stageline.store.queries import schedules as schedule_queries
from stageline.store.tables import PipelineRun, PipelineSchedule, ScheduleFire
from tests.factories import World
from tests.integration.engine.rig import FakeClock

DAY_MS = 86_400_000


def daily_slot() -> tuple[str, int]:
    """("HH:MM" UTC about twelve hours from now, epoch ms of its next occurrence)."""
    slot = (datetime.now(UTC) + timedelta(hours=12)).replace(second=0, microsecond=0)
    return slot.strftime("%H:%M"), int(slot.timestamp() * 1000)


def every_day(time: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "fixed",
        "name": "nightly",
        "enable": True,
        "days_of_week": [1, 2, 3, 4, 5, 6, 7],
        "time": time,
        "time_zone": "UTC",
        **extra,
    }


def firer(db: Database, clock: FakeClock, lease: str | None = None) -> ScheduleFirer:
    """A firer on `clock` that leads a lease of its own (named `lease`, to share it)."""
    leadership = Leadership(
        db, name=lease or f"test-{secrets.token_hex(4)}", clock=clock, periods=LeasePeriods()
    )
    return ScheduleFirer(RunEngine(db, clock=clock), leadership)


def runs_of(db: Database, pipeline_id: str) -> list[PipelineRun]:
    with db.reader() as session:
        query = select(PipelineRun).where(PipelineRun.pipeline_id == pipeline_id)
        return list(session.scalars(query.order_by(PipelineRun.run_number)))


def create(world: World, *schedules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"p-{secrets.token_hex(4)}",
        "is_publish": False,
        "definition": json.dumps({"stages": []}),
        "schedules": list(schedules),
        **fields,
    }
    response = world.client.post(f"{world.base}/pipelines", json=body, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    return body | {"id": response.json()["pipeline_id"]}


def detail(world: World, pipeline_id: str) -> dict[str, Any]:
    response = world.client.get(
        f"{world.base}/pipelines/{pipeline_id}", headers=world.viewer.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class TestSaving:
    def test_a_schedule_is_stored_as_sent_with_a_uuid(self, quiet_world: World) -> None:
        time, _ = daily_slot()
        sent = every_day(time, time_zone="China Standard Time", note={"kept": [1, 2]})
        pipeline = create(quiet_world, sent)
        (stored,) = detail(quiet_world, pipeline["id"])["schedules"]
        assert len(stored.pop("uuid")) == 32
        assert stored == sent

    def test_a_uuid_sent_back_is_kept_on_update(self, quiet_world: World) -> None:
        time, _ = daily_slot()
        pipeline = create(quiet_world, every_day(time))
        (stored,) = detail(quiet_world, pipeline["id"])["schedules"]
        body = {k: v for k, v in pipeline.items() if k != "id"}
        body["schedules"] = [stored | {"time": "03:00"}]
        response = quiet_world.client.put(
            f"{quiet_world.base}/pipelines/{pipeline['id']}",
            json=body,
            headers=quiet_world.admin.headers,
        )
        assert response.status_code == 200, response.text
        (again,) = detail(quiet_world, pipeline["id"])["schedules"]
        assert again == stored | {"time": "03:00"}

    @pytest.mark.parametrize(
        ("schedule", "path"),
        [
            ({"type": "fixed", "days_of_week": [0], "time": "09:00"}, "days_of_week[0]"),
            ({"type": "fixed", "days_of_week": [1], "time": "9h"}, "time"),
            ({"days_of_week": [1], "time": "09:00", "time_zone": "Atlantis"}, "time_zone"),
            ({"start_time": "2026-01-01 00:00", "interval_time": 1}, "interval_unit"),
        ],
    )
    def test_a_bad_schedule_is_a_400_naming_its_field(
        self, quiet_world: World, schedule: dict[str, Any], path: str
    ) -> None:
        body = {
            "name": f"p-{secrets.token_hex(4)}",
            "is_publish": False,
            "definition": json.dumps({"stages": []}),
            "schedules": [every_day("01:00"), schedule],
        }
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines", json=body, headers=quiet_world.admin.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith(f"schedules[1].{path}: ")

    def test_an_enabled_schedule_is_due_at_its_next_slot(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline = create(quiet_world, every_day(time), every_day(time, enable=False, name="off"))
        with quiet_db.reader() as session:
            plan = schedule_queries.read_schedule_plan(session, pipeline_id=pipeline["id"])
        assert list(plan.values()) == [slot]

    def test_a_save_while_a_slot_is_due_keeps_that_slot(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        stored = detail(quiet_world, pipeline_id)["schedules"]
        with quiet_db.writer() as session:  # saved again just after the slot, before it fired
            plan_schedules(session, pipeline_id=pipeline_id, schedules=stored, now=slot + 500)
        clock = FakeClock(slot + 600)
        assert firer(quiet_db, clock).run_once() >= 1
        with quiet_db.writer() as session:  # and once more after it fired: the next slot
            plan_schedules(session, pipeline_id=pipeline_id, schedules=stored, now=slot + 700)
            plan = schedule_queries.read_schedule_plan(session, pipeline_id=pipeline_id)
        assert list(plan.values()) == [slot + DAY_MS]
        assert len(runs_of(quiet_db, pipeline_id)) == 1


class TestFiring:
    def test_a_due_schedule_starts_one_scheduler_run(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot - 1)
        scheduler = firer(quiet_db, clock)
        scheduler.run_once()
        assert runs_of(quiet_db, pipeline_id) == []
        clock.now = slot + 500
        scheduler.run_once()
        (item,) = quiet_world.status(pipeline_id)
        assert item["trigger_type"] == "Scheduler"
        assert item["executor_name"] == "Scheduler"
        assert item["run_number"] == 1

    def test_the_same_slot_fires_once(self, quiet_world: World, quiet_db: Database) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot)
        scheduler = firer(quiet_db, clock)
        for _ in range(3):
            scheduler.run_once()
            clock.advance(1000)
        assert len(runs_of(quiet_db, pipeline_id)) == 1
        clock.now = slot + DAY_MS
        scheduler.run_once()
        assert len(runs_of(quiet_db, pipeline_id)) == 2

    def test_two_leaders_at_once_still_fire_once(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        """Two firers that both believe they lead (leases of their own), and the same slot."""
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot + 10)
        first, second = firer(quiet_db, clock), firer(quiet_db, clock)
        with quiet_db.reader() as session:
            due = schedule_queries.list_due_schedules(session, now=clock.now, limit=1000)
        (mine,) = [item for item in due if item.pipeline_id == pipeline_id]
        assert first.leadership.hold()
        assert second.leadership.hold()
        # Both read the row as due; the first fires, the second comes with its stale view.
        assert first._fire(mine, clock.now) == 1
        assert second._fire(mine, clock.now) == 0
        assert len(runs_of(quiet_db, pipeline_id)) == 1

    def test_leaders_racing_on_one_slot_start_one_run(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot + 10)
        with quiet_db.reader() as session:
            due = schedule_queries.list_due_schedules(session, now=clock.now, limit=1000)
        (mine,) = [item for item in due if item.pipeline_id == pipeline_id]
        racers = [firer(quiet_db, clock) for _ in range(4)]
        start = threading.Barrier(len(racers))

        def race(racer: ScheduleFirer) -> int:
            start.wait()
            return racer._fire(mine, clock.now)

        with ThreadPoolExecutor(len(racers)) as pool:
            fired = list(pool.map(race, racers))
        assert sorted(fired) == [0, 0, 0, 1]
        assert len(runs_of(quiet_db, pipeline_id)) == 1

    def test_a_slot_fired_before_is_not_fired_again_even_if_the_row_says_so(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot + 10)
        firer(quiet_db, clock).run_once()
        with quiet_db.writer() as session:  # as if the next slot had never been written
            row = session.get(PipelineSchedule, (pipeline_id, _uuid(quiet_world, pipeline_id)))
            assert row is not None
            row.next_fire_at = slot
        firer(quiet_db, clock).run_once()
        assert len(runs_of(quiet_db, pipeline_id)) == 1
        with quiet_db.reader() as session:
            fires = session.scalar(
                select(func.count()).where(ScheduleFire.pipeline_id == pipeline_id)
            )
        assert fires == 1

    def test_one_lease_one_leader_and_a_lost_lease_moves_on(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        lease = f"test-{secrets.token_hex(4)}"
        clock = FakeClock(slot - 5_000)
        leader, follower = firer(quiet_db, clock, lease), firer(quiet_db, clock, lease)
        assert leader.leadership.hold()
        assert not follower.leadership.hold()
        clock.now = slot + 1
        assert follower.run_once() == 0  # the leader, silent, still holds its lease
        clock.advance(LeasePeriods().lease_ms + 1)  # the leader died: its lease runs out
        assert follower.run_once() == 1
        assert not leader.leadership.hold()
        assert leader.run_once() == 0
        assert [run.trigger_type for run in runs_of(quiet_db, pipeline_id)] == ["Scheduler"]

    def test_a_leader_that_stops_hands_over_at_once(self, quiet_db: Database) -> None:
        lease = f"test-{secrets.token_hex(4)}"
        clock = FakeClock(system_clock())
        leader, follower = firer(quiet_db, clock, lease), firer(quiet_db, clock, lease)
        assert leader.leadership.hold()
        assert not follower.leadership.hold()
        leader.stop()
        assert follower.leadership.hold()

    def test_a_disabled_schedule_never_fires(self, quiet_world: World, quiet_db: Database) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time, enable=False))["id"]
        clock = FakeClock(slot + 10)
        firer(quiet_db, clock).run_once()
        assert runs_of(quiet_db, pipeline_id) == []

    def test_a_deleted_pipeline_never_fires(self, quiet_world: World, quiet_db: Database) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        response = quiet_world.client.delete(
            f"{quiet_world.base}/pipelines/{pipeline_id}", headers=quiet_world.admin.headers
        )
        assert response.status_code == 200, response.text
        clock = FakeClock(slot + 10)
        firer(quiet_db, clock).run_once()
        assert runs_of(quiet_db, pipeline_id) == []

    def test_after_a_downtime_the_latest_missed_slot_fires_once(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        clock = FakeClock(slot + 3 * DAY_MS + 3_600_000)  # four slots passed meanwhile
        scheduler = firer(quiet_db, clock)
        scheduler.run_once()
        scheduler.run_once()
        assert len(runs_of(quiet_db, pipeline_id)) == 1
        with quiet_db.reader() as session:
            fired = session.scalars(
                select(ScheduleFire.slot_at).where(ScheduleFire.pipeline_id == pipeline_id)
            ).all()
        assert fired == [slot + 3 * DAY_MS]

    def test_nothing_fires_for_slots_before_the_schedule_was_saved(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        earlier = datetime.now(UTC) - timedelta(hours=1)
        pipeline_id = create(quiet_world, every_day(earlier.strftime("%H:%M")))["id"]
        firer(quiet_db, FakeClock(system_clock())).run_once()
        assert runs_of(quiet_db, pipeline_id) == []

    def test_a_run_refused_by_the_concurrency_limit_takes_its_slot(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        definition = json.dumps(
            {"stages": [{"name": "S", "identifier": "S", "jobs": [_waiting_job()]}]}
        )
        pipeline_id = create(
            quiet_world,
            every_day(time),
            definition=definition,
            concurrency_control={"concurrency_number": 1, "exceed_action": "ABORT"},
        )["id"]
        quiet_world.run(pipeline_id)  # holds the only place
        clock = FakeClock(slot + 10)
        scheduler = firer(quiet_db, clock)
        assert scheduler.run_once() >= 1
        clock.advance(1000)
        scheduler.run_once()
        statuses = [(run.trigger_type, run.status) for run in runs_of(quiet_db, pipeline_id)]
        assert statuses[1:] == [("Scheduler", "IGNORED")]

    def test_pipelines_saved_before_schedules_fired_are_planned_when_a_leader_starts(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        time, slot = daily_slot()
        pipeline_id = create(quiet_world, every_day(time))["id"]
        with quiet_db.writer() as session:
            schedule_queries.delete_schedule_plans(session, pipeline_ids=[pipeline_id])
        clock = FakeClock(slot - 60_000)
        firer(quiet_db, clock).run_once()
        with quiet_db.reader() as session:
            plan = schedule_queries.read_schedule_plan(session, pipeline_id=pipeline_id)
        assert list(plan.values()) == [slot]


def _uuid(world: World, pipeline_id: str) -> str:
    (schedule,) = detail(world, pipeline_id)["schedules"]
    uuid: str = schedule["uuid"]
    return uuid


def _waiting_job() -> dict[str, Any]:
    """A job in a pool no agent serves: it keeps its run going."""
    return {
        "identifier": "J",
        "name": "J",
        "resource": json.dumps({"pool": f"nobody-{secrets.token_hex(4)}"}),
        "steps": [
            {
                "name": "s",
                "identifier": "s",
                "task": "official_shell_plugin",
                "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "true"}],
            }
        ],
    }
