"""Pipeline schedules (`PipelineSchedule`): what a client may send, and when a schedule is due.

Two forms. Fixed: `days_of_week` (Sunday = 1 … Saturday = 7) at `time` "HH:MM". Interval: from
`start_time`, every `interval_time` `interval_unit`s until `end_time` (if any), optionally only
on `days_of_week`. Both are read in `time_zone`: a CodeArts zone name or an IANA one. Slots are
epoch milliseconds; the fixed form's calendar (days, DST) is cronsim's, which follows Debian
cron: a time the clocks skip runs when they resume, a time they repeat runs once.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim

from stageline.domain.errors import InvalidInput, excerpt

CODEARTS_ZONES: Mapping[str, str] = {
    "China Standard Time": "Asia/Shanghai",
    "GMT Standard Time": "Europe/London",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Russian Standard Time": "Europe/Moscow",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Singapore Standard Time": "Asia/Singapore",
    "Pacific SA Standard Time": "America/Santiago",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Egypt Standard Time": "Africa/Cairo",
    "Saudi Arabia Standard Time": "Asia/Riyadh",
}
"""The zone names CodeArts offers, as the IANA zones they stand for."""
DEFAULT_ZONE = "UTC"
Unit = Literal["minute", "hour", "day", "week"]
UNIT_MS: Mapping[Unit, int] = {
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
}
MAX_INTERVAL = 100_000
"""The most units an interval may span (about 69 days in minutes, 1900 years in weeks)."""
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SEARCH_DAYS = 16
"""How many days a search for a slot on an allowed weekday looks before it gives up: an
interval of whole weeks that starts on another weekday never lands on one."""


@dataclass(frozen=True)
class Fixed:
    days: frozenset[int]
    """CodeArts weekdays: Sunday = 1 … Saturday = 7."""
    hour: int
    minute: int

    @property
    def cron(self) -> str:
        weekdays = ",".join(str(day - 1) for day in sorted(self.days))  # cron: Sunday = 0
        return f"{self.minute} {self.hour} * * {weekdays}"


@dataclass(frozen=True)
class Interval:
    start: int
    """Epoch ms of the first slot."""
    every: int
    unit: Unit
    end: int | None = None
    """Epoch ms after which no slot falls; None: no end."""
    days: frozenset[int] | None = None
    """Only slots on these CodeArts weekdays (in the schedule's zone); None: every day."""


@dataclass(frozen=True)
class Schedule:
    uuid: str
    name: str
    enabled: bool
    zone: ZoneInfo
    timing: Fixed | Interval | None
    """None only for a disabled schedule sent without its timing: it never fires."""

    @property
    def label(self) -> str:
        return self.name or self.uuid

    @property
    def fires(self) -> bool:
        return self.enabled and self.timing is not None


# -- parsing -------------------------------------------------------------------------------


def parse_schedules(schedules: Sequence[Mapping[str, Any]]) -> list[Schedule]:
    """Every schedule of a pipeline, or `InvalidInput` naming the first bad field
    (`schedules[2].time: …`). UUIDs must be distinct."""
    parsed: list[Schedule] = []
    seen: set[str] = set()
    for index, raw in enumerate(schedules):
        schedule = parse_schedule(raw, path=f"schedules[{index}]")
        if schedule.uuid and schedule.uuid in seen:
            raise InvalidInput(f"schedules[{index}].uuid: duplicate schedule '{schedule.uuid}'")
        seen.add(schedule.uuid)
        parsed.append(schedule)
    return parsed


def parse_schedule(raw: Mapping[str, Any], *, path: str = "schedule") -> Schedule:
    """One schedule. Fields that are present are checked whatever `enable` says; the timing
    fields are required only of an enabled schedule. Unknown fields are left alone."""

    def problem(field: str, text: str) -> InvalidInput:
        return InvalidInput(f"{path}.{field}: {text}")

    kind = raw.get("type", "fixed")
    if kind != "fixed":
        raise problem("type", f"only 'fixed' is supported, not '{excerpt(kind)}'")
    uuid = raw.get("uuid", "")
    if not isinstance(uuid, str) or len(uuid) > 64:
        raise problem("uuid", "must be a string of at most 64 characters")
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > 128:
        raise problem("name", "must be a string of at most 128 characters")
    enabled = raw.get("enable", True)
    if not isinstance(enabled, bool):
        raise problem("enable", "must be true or false")
    zone = _zone(raw.get("time_zone", DEFAULT_ZONE), problem)
    days = _days(raw["days_of_week"], problem) if "days_of_week" in raw else None
    interval_fields = ("start_time", "end_time", "interval_time", "interval_unit")
    timing: Fixed | Interval | None
    if any(raw.get(field) is not None for field in interval_fields):
        timing = _interval(raw, zone, days, problem, required=enabled)
    else:
        timing = _fixed(raw, days, problem, required=enabled)
    return Schedule(uuid=uuid, name=name, enabled=enabled, zone=zone, timing=timing)


Problem = Callable[[str, str], InvalidInput]


def _zone(name: object, problem: Problem) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise problem("time_zone", "must be a time zone name")
    try:
        return ZoneInfo(CODEARTS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        known = ", ".join(f"'{zone}'" for zone in CODEARTS_ZONES)
        raise problem(
            "time_zone", f"unknown zone '{excerpt(name)}'; use an IANA name or one of {known}"
        ) from None


def _days(value: object, problem: Problem) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise problem("days_of_week", "must be a non-empty list of days, Sunday = 1 … Saturday = 7")
    for index, day in enumerate(value):
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            raise problem(
                f"days_of_week[{index}]", f"'{excerpt(day)}' is not a day (Sunday = 1 … 7)"
            )
    return frozenset(value)


def _fixed(
    raw: Mapping[str, Any], days: frozenset[int] | None, problem: Problem, *, required: bool
) -> Fixed | None:
    time = raw.get("time")
    if time is None:
        if required:
            raise problem("time", "required: the time of day, HH:MM")
        return None
    match = _TIME.match(time) if isinstance(time, str) else None
    if match is None:
        raise problem("time", f"'{excerpt(time)}' is not a time of day HH:MM")
    if days is None:
        if required:
            raise problem("days_of_week", "required: the days to run on, Sunday = 1 … 7")
        return None
    return Fixed(days=days, hour=int(match[1]), minute=int(match[2]))


def _interval(
    raw: Mapping[str, Any],
    zone: ZoneInfo,
    days: frozenset[int] | None,
    problem: Problem,
    *,
    required: bool,
) -> Interval | None:
    start = _instant(raw.get("start_time"), "start_time", zone, problem)
    end = _instant(raw.get("end_time"), "end_time", zone, problem)
    every = _count(raw.get("interval_time"), problem)
    unit = _unit(raw.get("interval_unit"), problem)
    if start is not None and end is not None and end <= start:
        raise problem("end_time", "must be after start_time")
    if start is None or every is None or unit is None:
        if required:
            given = {"start_time": start, "interval_time": every, "interval_unit": unit}
            missing = next(field for field, value in given.items() if value is None)
            raise problem(missing, "required with an interval")
        return None
    return Interval(start=start, every=every, unit=unit, end=end, days=days)


def _instant(value: object, field: str, zone: ZoneInfo, problem: Problem) -> int | None:
    """Epoch ms, as a number or a string of digits; or an ISO 8601 date and time such as
    "2026-03-01 09:00[:00]", in the schedule's zone unless it names an offset."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise problem(field, "must not be before 1970")
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    try:
        if not isinstance(value, str) or len(value) < 16:
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise problem(
            field, f"'{excerpt(value)}' is neither epoch ms nor 'YYYY-MM-DD HH:MM[:SS]'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)


def _count(value: object, problem: Problem) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERVAL:
        raise problem("interval_time", f"must be a whole number from 1 to {MAX_INTERVAL}")
    return value


def _unit(value: object, problem: Problem) -> Unit | None:
    if value is None:
        return None
    unit = value.lower().removesuffix("s") if isinstance(value, str) else ""
    for known in UNIT_MS:
        if unit == known:
            return known
    raise problem("interval_unit", f"'{excerpt(value)}' is not one of minute, hour, day, week")


# -- timing ----------------------------------------------------------------------------------


def latest_slot(schedule: Schedule, now: int) -> int | None:
    """The latest slot at or before `now` (epoch ms), or None if there is none."""
    timing = schedule.timing
    if isinstance(timing, Fixed):
        after = _to_datetime(now - now % 1000 + 1000, schedule.zone)
        return _ms(next(CronSim(timing.cron, after, reverse=True)))
    if isinstance(timing, Interval):
        return _Slots(timing, schedule.zone).latest(now)
    return None


def next_slot(schedule: Schedule, now: int) -> int | None:
    """The first slot after `now` (epoch ms), or None if there is none."""
    timing = schedule.timing
    if isinstance(timing, Fixed):
        return _ms(next(CronSim(timing.cron, _to_datetime(now, schedule.zone))))
    if isinstance(timing, Interval):
        return _Slots(timing, schedule.zone).next(now)
    return None


def next_fire(schedules: Sequence[Mapping[str, Any]], now: int) -> int | None:
    """When the first of a pipeline's enabled schedules fires next after `now` (epoch ms);
    None when none will (or one no longer parses: it fires nothing either)."""
    try:
        parsed = parse_schedules(schedules)
    except InvalidInput:
        return None
    slots = [next_slot(schedule, now) for schedule in parsed if schedule.fires]
    return min((slot for slot in slots if slot is not None), default=None)


def slot_to_fire(schedule: Schedule, *, now: int, not_before: int) -> int | None:
    """The slot to fire at `now`: the latest one, if it is not before `not_before` (the first
    slot not yet fired). Slots missed while no server ran are not fired one by one: only
    the latest, once."""
    if not schedule.fires:
        return None
    slot = latest_slot(schedule, now)
    return slot if slot is not None and slot >= not_before else None


def _to_datetime(ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _weekday(moment: datetime) -> int:
    """The CodeArts weekday (Sunday = 1) of a datetime; Python counts Monday = 0."""
    return (moment.weekday() + 1) % 7 + 1


class _Slots:
    """The slots of an interval: `slot(k)` for k = 0, 1, … Minutes and hours are elapsed
    time; days and weeks keep the wall-clock time of `start` in the zone across DST changes
    (a wall time the clocks skip moves forward by the gap)."""

    def __init__(self, interval: Interval, zone: ZoneInfo) -> None:
        self.interval = interval
        self.zone = zone
        self.step = UNIT_MS[interval.unit] * interval.every
        self.wall = _to_datetime(interval.start, zone).replace(tzinfo=None)

    def slot(self, k: int) -> int:
        if self.interval.unit in ("minute", "hour"):
            return self.interval.start + k * self.step
        days = k * self.interval.every * (7 if self.interval.unit == "week" else 1)
        return _ms((self.wall + timedelta(days=days)).replace(tzinfo=self.zone))

    def _index_at_or_before(self, t: int) -> int:
        """The highest k whose slot is <= t (-1 if none); slots grow with k."""
        k = max((t - self.interval.start) // self.step, -1)
        while self.slot(k + 1) <= t:
            k += 1
        while k >= 0 and self.slot(k) > t:
            k -= 1
        return k

    def _last_index(self) -> int | None:
        end = self.interval.end
        return None if end is None else self._index_at_or_before(end)

    def latest(self, now: int) -> int | None:
        last = self._last_index()
        t = now
        for _ in range(_SEARCH_DAYS):
            k = self._index_at_or_before(t)
            if last is not None:
                k = min(k, last)
            if k < 0:
                return None
            slot = self.slot(k)
            moment = _to_datetime(slot, self.zone)
            if self.interval.days is None or _weekday(moment) in self.interval.days:
                return slot
            midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
            t = _ms(midnight) - 1
        return None

    def next(self, now: int) -> int | None:
        last = self._last_index()
        t = now
        for _ in range(_SEARCH_DAYS):
            k = self._index_at_or_before(t) + 1
            if last is not None and k > last:
                return None
            slot = self.slot(k)
            moment = _to_datetime(slot, self.zone)
            if self.interval.days is None or _weekday(moment) in self.interval.days:
                return slot
            midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
            t = _ms((midnight + timedelta(days=1)).replace(tzinfo=self.zone)) - 1
        return None
