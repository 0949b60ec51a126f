"""Where a window's occurrences fall, one local day at a time, so the cost follows the answer.

A cron expression fires at the same local minutes on every day it matches. Those minutes, and how
they group into continuous runs for a given duration or wall-clock end, are computed once per
expression; a day then costs a few time zone conversions however often the cron fires, and days
the expression does not match are skipped by croniter in one step. So a minute cron answers about
as fast as a daily one, and an always-open window costs one step per day of the search horizon.

Only days on which the zone changes its offset are walked fire by fire, with these rules
(croniter 7 semantics, except for the repeated hour, where shipdeck follows Vixie cron):
- a nonexistent local time (spring-forward gap) fires at the first instant after the gap when the
  hour field names hours (several such fires collapse into one), and not at all when the hour field
  is "*" (croniter: "30 2 * * *" fires 03:00 CEST, "30 * * * *" skips from 01:30 to 03:30);
- a fixed local time (neither the minute nor the hour field starts with "*", Vixie cron's
  fixed-time job) that occurs twice (fall-back repeat) opens an allow occurrence once, at its
  first occurrence, and keeps a deny occurrence closed from its first start until the end computed
  from its second, so a deny covers both; a wildcard cron ("*/5 * * * *", "30 * * * *") fires in
  both hours, as croniter and Vixie cron do;
- a wall-clock end that does not exist ends at the first instant after the gap; one that occurs
  twice ends an allow window at the first and a deny window at the second (the narrower reading
  for allow, the wider for deny).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

if TYPE_CHECKING:
    from shipdeck.core.domain.windows import WindowSpec

Interval = tuple[datetime, datetime]

_DAY = timedelta(days=1)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {name: i for names in (_WEEKDAYS, _FULL) for i, name in enumerate(names)}
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class WallTime:
    """A local wall-clock time an occurrence ends at: every day, or on one weekday (0 = Monday)."""

    weekday: int | None
    hour: int
    minute: int

    def next_after(self, wall: datetime) -> datetime:
        """The first naive local datetime strictly after `wall` that shows this time."""
        at = datetime.combine(wall.date(), time(self.hour, self.minute))
        if self.weekday is None:
            return at if at > wall else at + _DAY
        at += timedelta(days=(self.weekday - wall.weekday()) % 7)
        return at if at > wall else at + timedelta(days=7)

    def __str__(self) -> str:
        day = "" if self.weekday is None else f"{_WEEKDAYS[self.weekday].title()} "
        return f"{day}{self.hour:02d}:{self.minute:02d}"


def parse_wall_time(text: str) -> WallTime:
    """Parse "07:00" (every day) or "Mon 07:00" (weekly) into a WallTime."""
    parts = text.strip().lower().split()
    problem = ValueError(
        f"invalid end '{text}': use a local time HH:MM, optionally after a weekday,"
        " e.g. 07:00 or Mon 07:00"
    )
    if not 1 <= len(parts) <= 2:
        raise problem
    weekday = None
    if len(parts) == 2:
        if parts[0] not in _DAY_NAMES:
            raise problem
        weekday = _DAY_NAMES[parts[0]]
    hh, sep, mm = parts[-1].partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and 1 <= len(hh) <= 2):
        raise problem
    if int(hh) > 23 or int(mm) > 59:
        raise problem
    return WallTime(weekday, int(hh), int(mm))


@dataclass(frozen=True)
class _Daily:
    """What one cron expression does within any local day it matches."""

    minutes: tuple[int, ...]  # minutes after local midnight it fires at, ascending
    day_cron: str | None  # fires once on each matching day; None when every day matches
    wildcard_hour: bool  # "*" in the hour field: croniter skips, not moves, gap fires
    fixed_time: bool  # neither minute nor hour starts with "*" (Vixie cron's fixed-time job)


@lru_cache(maxsize=512)
def _daily(cron: str) -> _Daily:
    fields = _ALIASES.get(cron.strip().lower(), cron).split()
    minute_set, hour_set = croniter(" ".join(fields)).expanded[:2]
    mins = range(60) if minute_set == ["*"] else [int(m) for m in minute_set]
    hours = range(24) if hour_set == ["*"] else [int(h) for h in hour_set]
    minutes = tuple(sorted(h * 60 + m for h in hours for m in mins))
    every_day = all(f in ("*", "?") for f in fields[2:])
    first = minutes[0]
    day_cron = None if every_day else f"{first % 60} {first // 60} {' '.join(fields[2:])}"
    fixed = not (fields[0].startswith("*") or fields[1].startswith("*"))
    return _Daily(minutes, day_cron, hour_set == ["*"], fixed)


@lru_cache(maxsize=2048)
def _groups(
    cron: str, gap_seconds: float | None, split_at: int | None
) -> tuple[tuple[int, int], ...]:
    """The day's fires as (first, last) minute runs whose occurrences overlap or touch.

    With a duration, fires at most `gap_seconds` apart merge; with a wall-clock end, every fire
    before the end time lasts until it, so runs split only where the end time falls between two
    fires (`split_at`, minutes after midnight, on days the end applies).
    """
    minutes = _daily(cron).minutes
    out: list[tuple[int, int]] = []
    first = last = minutes[0]
    for m in minutes[1:]:
        if gap_seconds is not None:
            apart = (m - last) * 60 > gap_seconds
        else:
            apart = split_at is not None and last < split_at < m
        if apart:
            out.append((first, last))
            first = m
        last = m
    out.append((first, last))
    return tuple(out)


def _matching_days(daily: _Daily, first: date) -> Iterator[date]:
    """Local dates from `first` on which the expression fires, ascending."""
    if daily.day_cron is None:
        d = first
        while True:
            yield d
            d += _DAY
    # Naive datetimes: croniter steps the wall calendar, which is all a day match needs.
    it = croniter(daily.day_cron, datetime.combine(first, time()) - timedelta(minutes=1))
    while True:
        try:
            yield it.get_next(datetime).date()
        except CroniterBadDateError:
            return


def _wall(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def _transition(
    lo: datetime, hi: datetime, zone: ZoneInfo
) -> tuple[datetime, timedelta, timedelta]:
    """The first second in (lo, hi] at which the zone's offset differs from its offset at `lo`
    (one change in between: no zone changes twice within a day), and the offsets either side."""
    low, high = int(lo.timestamp()), int(hi.timestamp())
    before = datetime.fromtimestamp(low, zone).utcoffset()
    after = datetime.fromtimestamp(high, zone).utcoffset()
    assert before is not None and after is not None
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC), before, after


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the spring-forward gap that `wall` falls in: read with the offset
    after the gap it lands before the change, read with the one before it lands after it."""
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return _transition(before, after, zone)[0]


def _instants(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The UTC instants `wall` names: (first, second) when repeated, (t, t) when unique,
    None when the wall time does not exist."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return first, first
    if _wall(first, zone) == wall:
        return first, second
    return None


def to_utc(wall: datetime, zone: ZoneInfo, later: bool) -> datetime:
    """A naive local time as one instant: the gap's end if it does not exist, the first (or with
    `later`, the second) occurrence if it occurs twice."""
    pair = _instants(wall, zone)
    if pair is None:
        return _gap_end(wall, zone)
    return pair[1] if later else pair[0]


def _end(spec: WindowSpec, wall: datetime, start: datetime, zone: ZoneInfo) -> datetime:
    if spec.end is None:
        assert spec.duration is not None
        return start + spec.duration
    return to_utc(spec.end.next_after(wall), zone, later=spec.kind == "deny")


def _steady_day(spec: WindowSpec, d: date, u0: datetime) -> Iterator[Interval]:
    """The day's runs by arithmetic: the offset holds all day, so wall minute m is u0 + m."""
    zone = ZoneInfo(spec.timezone)
    midnight = datetime.combine(d, time())
    if spec.end is None:
        assert spec.duration is not None
        gap, split = spec.duration.total_seconds(), None
    else:
        applies = spec.end.weekday is None or spec.end.weekday == d.weekday()
        gap, split = None, (spec.end.hour * 60 + spec.end.minute if applies else None)
    for a, b in _groups(spec.cron, gap, split):
        last = u0 + timedelta(minutes=b)
        yield u0 + timedelta(minutes=a), _end(spec, midnight + timedelta(minutes=b), last, zone)


def _changing_day(spec: WindowSpec, d: date, u0: datetime, u1: datetime) -> list[Interval]:
    """The day's occurrences fire by fire, under the DST rules in the module docstring.

    Each wall minute names the instants wall - offset that fall on the right side of the
    change: two in the repeated hour, none in the gap, one elsewhere.
    """
    zone = ZoneInfo(spec.timezone)
    daily = _daily(spec.cron)
    # From six hours before midnight: a day whose midnight falls in a gap starts at the change.
    change, before, after = _transition(u0 - timedelta(hours=6), u1, zone)
    midnight = datetime.combine(d, time(), tzinfo=UTC)  # the wall clock, as UTC arithmetic
    out: list[Interval] = []
    seen: set[datetime] = set()
    for m in daily.minutes:
        wall = midnight + timedelta(minutes=m)
        early, late = wall - before, wall - after
        names = sorted([*([early] if early < change else []), *([late] if late >= change else [])])
        if not names and daily.wildcard_hour:
            continue
        start, second = (names[0], names[-1]) if names else (change, change)
        naive = wall.replace(tzinfo=None)
        if second != start and not daily.fixed_time:  # a wildcard cron fires in both hours
            out.append((second, _end(spec, naive, second, zone)))
            second = start
        if start in seen:
            continue
        seen.add(start)
        out.append((start, _end(spec, naive, second if spec.kind == "deny" else start, zone)))
    return sorted(out)


def _day_bounds(d: date, zone: ZoneInfo) -> tuple[datetime, datetime, bool]:
    """UTC instants of the day's two midnights, and whether the offset holds between them."""
    midnight = datetime.combine(d, time())
    u0 = to_utc(midnight, zone, later=False)
    u1 = to_utc(midnight + _DAY, zone, later=False)
    steady = u1 - u0 == _DAY and _wall(u0, zone) == midnight
    return u0, u1, steady and _wall(u1, zone) == midnight + _DAY


def _lookback(spec: WindowSpec) -> timedelta:
    """How long before an instant an occurrence still lasting at it may have started (give or
    take a DST shift, which the extra day merged_runs starts earlier covers)."""
    if spec.end is None:
        assert spec.duration is not None
        return spec.duration
    return _DAY if spec.end.weekday is None else timedelta(days=7)


def merged_runs(spec: WindowSpec, since: datetime, until: datetime) -> Iterator[Interval]:
    """Merged [start, end) UTC intervals of the window's occurrences that end after `since`.

    Overlapping or touching occurrences merge, so a sweep sees only real state changes.
    Occurrences starting after `until` are not generated; intervals ending by `until` are exact.
    """
    zone = ZoneInfo(spec.timezone)
    daily = _daily(spec.cron)
    first_day = _wall(since - _lookback(spec), zone).date() - _DAY
    run: Interval | None = None
    for d in _matching_days(daily, first_day):
        u0, u1, steady = _day_bounds(d, zone)
        day = _steady_day(spec, d, u0) if steady else _changing_day(spec, d, u0, u1)
        for start, end in day:
            if start > until:
                if run is not None and run[1] > since:
                    yield run
                return
            if run is not None and start <= run[1]:
                run = (run[0], max(run[1], end))
                continue
            if run is not None and run[1] > since:
                yield run
            run = (start, end)
    if run is not None and run[1] > since:
        yield run
