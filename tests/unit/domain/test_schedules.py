"""Schedules: what is accepted, and when each form is due (days, zones, DST, intervals)."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stageline.domain.errors import InvalidInput
from stageline.domain.schedules import (
    CODEARTS_ZONES,
    latest_slot,
    next_slot,
    parse_schedule,
    parse_schedules,
    slot_to_fire,
)

MINUTE = 60_000


def at(text: str, zone: str = "UTC") -> int:
    """Epoch ms of a wall-clock time in `zone`."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def wall(ms: int | None, zone: str = "UTC") -> str | None:
    """A slot as wall-clock time in `zone`, with its offset."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone)).isoformat(timespec="minutes")


def fixed(days: list[int], time: str, zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {"type": "fixed", "days_of_week": days, "time": time, "time_zone": zone, **extra}


class TestFixed:
    def test_days_of_week_count_from_sunday(self) -> None:
        # 2026-03-01 is a Sunday.
        schedule = parse_schedule(fixed([1], "09:00"))
        assert wall(next_slot(schedule, at("2026-02-26 12:00"))) == "2026-03-01T09:00+00:00"
        saturday = parse_schedule(fixed([7], "09:00"))
        assert wall(next_slot(saturday, at("2026-02-26 12:00"))) == "2026-02-28T09:00+00:00"

    def test_the_latest_slot_may_be_now_and_the_next_is_after_it(self) -> None:
        schedule = parse_schedule(fixed([1, 2, 3, 4, 5, 6, 7], "09:00"))
        now = at("2026-03-02 09:00")
        assert latest_slot(schedule, now) == now
        assert latest_slot(schedule, now - 1) == at("2026-03-01 09:00")
        assert next_slot(schedule, now) == at("2026-03-03 09:00")

    @pytest.mark.parametrize(
        ("zone", "expected"),
        [
            ("China Standard Time", "2026-03-02T01:00+00:00"),
            ("Asia/Shanghai", "2026-03-02T01:00+00:00"),
            ("Central Standard Time (Mexico)", "2026-03-02T15:00+00:00"),
            ("UTC", "2026-03-02T09:00+00:00"),
        ],
    )
    def test_the_time_is_read_in_the_schedule_zone(self, zone: str, expected: str) -> None:
        schedule = parse_schedule(fixed([2], "09:00", zone))  # Monday
        assert wall(next_slot(schedule, at("2026-03-01 00:00"))) == expected

    def test_every_codearts_zone_is_known(self) -> None:
        for name in CODEARTS_ZONES:
            assert parse_schedule(fixed([1], "00:00", name)).zone.key == CODEARTS_ZONES[name]

    def test_a_time_the_clocks_skip_runs_when_they_resume(self) -> None:
        # London springs forward 01:00 -> 02:00 on Sunday 2026-03-29.
        schedule = parse_schedule(fixed([1], "01:30", "GMT Standard Time"))
        slot = next_slot(schedule, at("2026-03-28 12:00"))
        assert wall(slot, "Europe/London") == "2026-03-29T02:00+01:00"
        assert wall(next_slot(schedule, slot or 0), "Europe/London") == "2026-04-05T01:30+01:00"

    def test_a_time_the_clocks_repeat_runs_once(self) -> None:
        # London falls back 02:00 -> 01:00 on Sunday 2026-10-25: 01:30 happens twice.
        schedule = parse_schedule(fixed([1], "01:30", "Europe/London"))
        first = next_slot(schedule, at("2026-10-24 12:00"))
        assert wall(first, "Europe/London") == "2026-10-25T01:30+01:00"
        assert wall(next_slot(schedule, first or 0), "Europe/London") == "2026-11-01T01:30+00:00"

    def test_the_wall_time_holds_across_a_dst_change(self) -> None:
        schedule = parse_schedule(fixed([6], "09:00", "Pacific SA Standard Time"))  # Friday
        # Santiago leaves summer time on 2026-04-05 (UTC-3 -> UTC-4).
        before = next_slot(schedule, at("2026-03-30 00:00"))
        after = next_slot(schedule, before or 0)
        assert wall(before, "America/Santiago") == "2026-04-03T09:00-03:00"
        assert wall(after, "America/Santiago") == "2026-04-10T09:00-04:00"


class TestInterval:
    def test_minutes_count_from_the_start(self) -> None:
        schedule = parse_schedule(
            {"start_time": "2026-03-01 09:00", "interval_time": 15, "interval_unit": "minute"}
        )
        assert next_slot(schedule, at("2026-03-01 08:00")) == at("2026-03-01 09:00")
        assert latest_slot(schedule, at("2026-03-01 08:59")) is None
        assert latest_slot(schedule, at("2026-03-01 10:07")) == at("2026-03-01 10:00")
        assert next_slot(schedule, at("2026-03-01 10:00")) == at("2026-03-01 10:15")

    def test_hours_are_elapsed_time_across_dst(self) -> None:
        schedule = parse_schedule(
            {
                "start_time": "2026-03-28 23:00",
                "interval_time": "2",
                "interval_unit": "hours",
                "time_zone": "Europe/London",
            }
        )
        slot = next_slot(schedule, at("2026-03-29 00:30", "UTC"))
        assert wall(slot, "Europe/London") == "2026-03-29T02:00+01:00"  # 01:00 UTC

    def test_days_keep_the_wall_time_across_dst(self) -> None:
        schedule = parse_schedule(
            {
                "start_time": "2026-03-27 09:00",
                "interval_time": 1,
                "interval_unit": "day",
                "time_zone": "GMT Standard Time",
            }
        )
        slots = [next_slot(schedule, at("2026-03-28 10:00", "Europe/London"))]
        slots.append(next_slot(schedule, slots[-1] or 0))
        assert [wall(s, "Europe/London") for s in slots] == [
            "2026-03-29T09:00+01:00",
            "2026-03-30T09:00+01:00",
        ]
        assert wall(latest_slot(schedule, at("2026-03-29 08:59", "Europe/London"))) == (
            "2026-03-28T09:00+00:00"
        )

    def test_weeks_and_an_end(self) -> None:
        schedule = parse_schedule(
            {
                "start_time": at("2026-03-02 06:00"),
                "end_time": "2026-03-20 00:00",
                "interval_time": 1,
                "interval_unit": "week",
            }
        )
        assert next_slot(schedule, at("2026-03-10 00:00")) == at("2026-03-16 06:00")
        assert next_slot(schedule, at("2026-03-16 06:00")) is None
        assert latest_slot(schedule, at("2027-01-01 00:00")) == at("2026-03-16 06:00")

    def test_days_of_week_narrow_an_interval(self) -> None:
        schedule = parse_schedule(
            {
                "start_time": "2026-03-01 00:00",  # a Sunday
                "interval_time": 6,
                "interval_unit": "hour",
                "days_of_week": [2, 4],  # Monday, Wednesday
            }
        )
        assert next_slot(schedule, at("2026-03-01 05:00")) == at("2026-03-02 00:00")
        assert next_slot(schedule, at("2026-03-02 18:00")) == at("2026-03-04 00:00")
        assert latest_slot(schedule, at("2026-03-04 05:00")) == at("2026-03-04 00:00")
        assert latest_slot(schedule, at("2026-03-03 23:00")) == at("2026-03-02 18:00")

    def test_an_offset_in_the_start_wins_over_the_zone(self) -> None:
        schedule = parse_schedule(
            {
                "start_time": "2026-03-01T09:00:00+08:00",
                "interval_time": 1,
                "interval_unit": "day",
                "time_zone": "UTC",
            }
        )
        assert next_slot(schedule, 0) == at("2026-03-01 01:00")


class TestSlotToFire:
    SCHEDULE = fixed([1, 2, 3, 4, 5, 6, 7], "09:00")

    def test_after_a_downtime_only_the_latest_missed_slot_fires(self) -> None:
        schedule = parse_schedule(self.SCHEDULE)
        first_unfired = at("2026-03-01 09:00")
        now = at("2026-03-05 12:00")  # four slots missed
        assert slot_to_fire(schedule, now=now, not_before=first_unfired) == at("2026-03-05 09:00")

    def test_nothing_fires_before_the_first_unfired_slot(self) -> None:
        schedule = parse_schedule(self.SCHEDULE)
        assert slot_to_fire(schedule, now=at("2026-03-01 08:59"), not_before=0) is not None
        first_unfired = at("2026-03-01 09:00")
        assert slot_to_fire(schedule, now=first_unfired - 1, not_before=first_unfired) is None

    def test_a_disabled_schedule_never_fires(self) -> None:
        schedule = parse_schedule({**self.SCHEDULE, "enable": False})
        assert slot_to_fire(schedule, now=at("2026-03-05 12:00"), not_before=0) is None


class TestValidation:
    @pytest.mark.parametrize(
        ("raw", "path"),
        [
            ({"type": "cron", "days_of_week": [1], "time": "09:00"}, "schedules[0].type"),
            (fixed([0], "09:00"), "schedules[0].days_of_week[0]"),
            (fixed([8], "09:00"), "schedules[0].days_of_week[0]"),
            (fixed([1, True], "09:00"), "schedules[0].days_of_week[1]"),
            (fixed([], "09:00"), "schedules[0].days_of_week"),
            (fixed([1], "24:00"), "schedules[0].time"),
            (fixed([1], "9am"), "schedules[0].time"),
            ({"days_of_week": [1]}, "schedules[0].time"),
            ({"time": "09:00"}, "schedules[0].days_of_week"),
            (fixed([1], "09:00", "Mars/Olympus"), "schedules[0].time_zone"),
            (fixed([1], "09:00", enable="yes"), "schedules[0].enable"),
            (
                {"start_time": "yesterday", "interval_time": 1, "interval_unit": "day"},
                "schedules[0].start_time",
            ),
            (
                {"start_time": 0, "interval_time": 0, "interval_unit": "day"},
                "schedules[0].interval_time",
            ),
            (
                {"start_time": 0, "interval_time": 1, "interval_unit": "fortnight"},
                "schedules[0].interval_unit",
            ),
            (
                {"start_time": 5, "end_time": 5, "interval_time": 1, "interval_unit": "day"},
                "schedules[0].end_time",
            ),
            ({"interval_time": 1, "interval_unit": "day"}, "schedules[0].start_time"),
        ],
    )
    def test_a_bad_field_is_named_by_its_path(self, raw: dict[str, Any], path: str) -> None:
        with pytest.raises(InvalidInput) as error:
            parse_schedules([raw])
        assert error.value.message.startswith(f"{path}: "), error.value.message

    def test_a_disabled_schedule_may_leave_its_timing_out(self) -> None:
        schedule = parse_schedule({"type": "fixed", "name": "nightly", "enable": False})
        assert schedule.timing is None
        assert not schedule.fires

    def test_duplicate_uuids_are_refused(self) -> None:
        with pytest.raises(InvalidInput, match=r"^schedules\[1\]\.uuid: duplicate"):
            parse_schedules([fixed([1], "09:00", uuid="u1"), fixed([2], "09:00", uuid="u1")])
