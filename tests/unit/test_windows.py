"""Deployment windows: fixed-clock cases, then properties checked against a brute-force reference.

The reference never merges occurrences or sweeps: it lists raw croniter fire times and asks, for
one instant, whether any occurrence, deny or freeze covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipdeck.core.domain.occurrences import WallTime
from shipdeck.core.domain.windows import (
    HORIZON,
    FreezeSpec,
    WindowSpec,
    WindowState,
    describe_next,
    parse_duration,
    validate_cron,
    validate_timezone,
    window_state,
)

BERLIN = "Europe/Berlin"
US = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    """A wall-clock time in `tz` as the UTC instant window_state reports."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def allow(cron: str, duration: str, tz: str = BERLIN, name: str = "biz") -> WindowSpec:
    return WindowSpec(name, cron, parse_duration(duration), tz, "allow")


def deny(cron: str, duration: str, tz: str = BERLIN, name: str = "lunch") -> WindowSpec:
    return WindowSpec(name, cron, parse_duration(duration), tz, "deny")


BUSINESS = allow("0 9 * * 1-5", "8h")  # 09:00-17:00 Berlin, Monday to Friday
# 2024-06-03 is a Monday; Berlin is UTC+2 in June.
MON_0900 = local(BERLIN, 2024, 6, 3, 9)
MON_1700 = local(BERLIN, 2024, 6, 3, 17)


# --- fixed clocks -------------------------------------------------------------------------------


def test_allow_window_inside_is_open_with_close_and_reopen() -> None:
    state = window_state([BUSINESS], [], local(BERLIN, 2024, 6, 3, 12))
    assert state == WindowState(
        open=True,
        reason=None,
        next_open=local(BERLIN, 2024, 6, 4, 9),
        next_close=MON_1700,
        blocker_kind=None,
    )


def test_allow_window_before_start_is_closed_and_names_the_window() -> None:
    state = window_state([BUSINESS], [], local(BERLIN, 2024, 6, 3, 8, 59))
    assert not state.open
    assert state.blocker_kind == "window_closed"
    assert state.reason is not None and "biz" in state.reason
    assert state.next_open == MON_0900
    assert state.next_close == MON_1700


def test_weekend_waits_for_monday() -> None:
    state = window_state([BUSINESS], [], local(BERLIN, 2024, 6, 8, 12))  # Saturday
    assert not state.open
    assert state.next_open == local(BERLIN, 2024, 6, 10, 9)


def test_start_is_inclusive_and_end_exclusive() -> None:
    assert window_state([BUSINESS], [], MON_0900).open
    assert not window_state([BUSINESS], [], MON_0900 - US).open
    assert window_state([BUSINESS], [], MON_1700 - US).open
    closed = window_state([BUSINESS], [], MON_1700)
    assert not closed.open
    assert closed.next_open == local(BERLIN, 2024, 6, 4, 9)


def test_returned_instants_are_utc() -> None:
    state = window_state([BUSINESS], [], datetime(2024, 6, 3, 12, tzinfo=ZoneInfo("Asia/Tokyo")))
    assert state.next_open is not None and state.next_open.tzinfo is UTC
    assert state.next_open == MON_0900


def test_no_windows_is_always_open() -> None:
    state = window_state([], [], utc(2024, 6, 3))
    assert state == WindowState(True, None, None, None, None)


def test_deny_wins_over_allow() -> None:
    lunch = deny("0 12 * * *", "1h")
    state = window_state([BUSINESS, lunch], [], local(BERLIN, 2024, 6, 3, 12, 30))
    assert not state.open
    assert state.blocker_kind == "window_closed"
    assert state.reason is not None
    assert "deny window 'lunch'" in state.reason and "13:00" in state.reason
    assert "allow" not in state.reason  # the allow window is active; only the deny blocks
    assert state.next_open == local(BERLIN, 2024, 6, 3, 13)
    assert state.next_close == MON_1700


def test_deny_alone_blocks_only_its_occurrences() -> None:
    nightly = deny("0 2 * * *", "90m", name="backup")
    assert window_state([nightly], [], local(BERLIN, 2024, 6, 3, 1, 59)).open
    state = window_state([nightly], [], local(BERLIN, 2024, 6, 3, 2))
    assert not state.open
    assert state.next_open == local(BERLIN, 2024, 6, 3, 3, 30)
    assert state.next_close == local(BERLIN, 2024, 6, 4, 2)


def test_open_state_reports_the_close_then_the_reopen() -> None:
    lunch = deny("0 12 * * *", "1h")
    state = window_state([BUSINESS, lunch], [], local(BERLIN, 2024, 6, 3, 10))
    assert state.open
    assert state.next_close == local(BERLIN, 2024, 6, 3, 12)
    assert state.next_open == local(BERLIN, 2024, 6, 3, 13)


def test_freeze_wins_and_is_reported_as_frozen() -> None:
    freeze = FreezeSpec("release-freeze", utc(2024, 6, 3), utc(2024, 6, 5), "quarter close")
    state = window_state([BUSINESS], [freeze], local(BERLIN, 2024, 6, 3, 12))
    assert not state.open
    assert state.blocker_kind == "frozen"
    assert state.reason is not None
    assert "release-freeze" in state.reason and "quarter close" in state.reason
    # The freeze ends Wednesday 02:00 Berlin; the business window opens again at 09:00.
    assert state.next_open == local(BERLIN, 2024, 6, 5, 9)
    assert state.next_close == local(BERLIN, 2024, 6, 5, 17)


def test_freeze_bounds_start_inclusive_end_exclusive() -> None:
    freeze = FreezeSpec("f", utc(2024, 6, 3, 10), utc(2024, 6, 3, 11))
    assert window_state([], [freeze], utc(2024, 6, 3, 10) - US).open
    at_start = window_state([], [freeze], utc(2024, 6, 3, 10))
    assert not at_start.open
    assert at_start.next_open == utc(2024, 6, 3, 11)
    assert at_start.next_close is None
    assert window_state([], [freeze], utc(2024, 6, 3, 11)).open
    before = window_state([], [freeze], utc(2024, 6, 3, 9))
    assert (before.next_close, before.next_open) == (utc(2024, 6, 3, 10), utc(2024, 6, 3, 11))


def test_frozen_and_denied_lists_both_causes_freeze_first() -> None:
    freeze = FreezeSpec("f", utc(2024, 6, 3), utc(2024, 6, 4))
    state = window_state([deny("0 0 * * *", "1d")], [freeze], utc(2024, 6, 3, 12))
    assert state.blocker_kind == "frozen"
    assert state.reason is not None
    assert state.reason.index("frozen by 'f'") < state.reason.index("deny window 'lunch'")


def test_overnight_window_started_yesterday_still_counts() -> None:
    night = allow("0 22 * * *", "8h", name="night")
    state = window_state([night], [], local(BERLIN, 2024, 6, 4, 2))
    assert state.open
    assert state.next_close == local(BERLIN, 2024, 6, 4, 6)
    assert state.next_open == local(BERLIN, 2024, 6, 4, 22)


def test_friday_night_window_runs_into_saturday() -> None:
    night = allow("0 22 * * 1-5", "10h", name="night")
    assert window_state([night], [], local(BERLIN, 2024, 6, 8, 7, 59)).open  # Saturday
    state = window_state([night], [], local(BERLIN, 2024, 6, 8, 8))
    assert not state.open
    assert state.next_open == local(BERLIN, 2024, 6, 10, 22)


def test_overlapping_and_touching_occurrences_merge() -> None:
    morning = allow("0 9 * * *", "4h", name="morning")
    afternoon = allow("0 12 * * *", "5h", name="afternoon")
    state = window_state([morning, afternoon], [], local(BERLIN, 2024, 6, 3, 10))
    assert state.next_close == local(BERLIN, 2024, 6, 3, 17)
    back_to_back = allow("0 */4 * * *", "4h", "UTC", name="always")
    state = window_state([back_to_back], [], utc(2024, 6, 3, 1))
    assert state == WindowState(True, None, None, None, None)


def test_back_to_back_wall_clock_windows_gap_when_the_clock_falls_back() -> None:
    # In Berlin the 00:00 CEST and 04:00 CET fires of 2024-10-27 are 5 real hours apart, so
    # 4h occurrences leave one closed hour; elapsed-time durations make that gap real.
    back_to_back = allow("0 */4 * * *", "4h", name="always")
    state = window_state([back_to_back], [], utc(2024, 6, 3, 1))
    assert state.open
    assert state.next_close == utc(2024, 10, 27, 2)
    assert state.next_open == utc(2024, 10, 27, 3)


def test_never_open_within_horizon_gives_none() -> None:
    state = window_state([allow("0 9 * * *", "1h"), deny("0 8 * * *", "3h")], [], utc(2024, 6, 3))
    assert not state.open
    assert state.next_open is None and state.next_close is None
    assert describe_next(state, BERLIN, utc(2024, 6, 3)) == (
        f"window closed, no opening within {HORIZON.days} days"
    )


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_state([], [], datetime(2024, 6, 3))


# --- DST ----------------------------------------------------------------------------------------


def test_wall_clock_cron_on_both_sides_of_spring_forward() -> None:
    nine = allow("0 9 * * *", "8h")
    # 2024-03-31: Berlin moves from UTC+1 to UTC+2 at 01:00Z.
    assert window_state([nine], [], utc(2024, 3, 30, 7)).next_open == utc(2024, 3, 30, 8)
    saturday = window_state([nine], [], utc(2024, 3, 30, 12))
    assert saturday.next_close == utc(2024, 3, 30, 16)  # 17:00 CET
    assert saturday.next_open == utc(2024, 3, 31, 7)  # 09:00 CEST, asked before the change


def test_duration_is_elapsed_time_across_the_change() -> None:
    midnight = allow("0 0 * * *", "8h")
    state = window_state([midnight], [], utc(2024, 3, 31, 0))
    assert state.open
    # Opened 00:00 CET (23:00Z); 8 real hours later is 07:00Z, which is 09:00 CEST.
    assert state.next_close == utc(2024, 3, 31, 7)
    state = window_state([midnight], [], utc(2024, 10, 27, 0))
    # Opened 00:00 CEST (22:00Z the day before); 8 real hours later is 06:00Z = 07:00 CET.
    assert state.next_close == utc(2024, 10, 27, 6)


def test_nonexistent_local_time_fires_at_first_existing_minute() -> None:
    gap = allow("30 2 * * *", "30m")
    state = window_state([gap], [], utc(2024, 3, 30, 12))
    assert state.next_open == local(BERLIN, 2024, 3, 31, 3)  # 02:30 does not exist that night
    assert state.next_close == utc(2024, 3, 31, 1, 30)


def test_repeated_local_time_opens_an_allow_window_once_the_first() -> None:
    # Vixie cron runs a job in the repeated hour once; croniter 7 would fire twice.
    repeat = allow("30 2 * * *", "30m")
    first = local(BERLIN, 2024, 10, 27, 2, 30, fold=0)  # CEST, 00:30Z
    second = local(BERLIN, 2024, 10, 27, 2, 30, fold=1)  # CET, 01:30Z
    assert second - first == timedelta(hours=1)
    opened = window_state([repeat], [], first)
    assert opened.open and opened.next_close == first + timedelta(minutes=30)
    between = window_state([repeat], [], first + timedelta(minutes=45))
    assert not between.open
    assert between.next_open == local(BERLIN, 2024, 10, 28, 2, 30)
    assert not window_state([repeat], [], second + timedelta(minutes=1)).open


def test_repeated_local_time_keeps_a_deny_window_closed_across_both() -> None:
    # 2026-11-01: New York falls back from EDT to EST at 06:00Z; 01:30 happens twice.
    repeat = deny("30 1 * * *", "30m", tz="America/New_York")
    first = local("America/New_York", 2026, 11, 1, 1, 30, fold=0)  # EDT, 05:30Z
    second = local("America/New_York", 2026, 11, 1, 1, 30, fold=1)  # EST, 06:30Z
    state = window_state([repeat], [], first)
    assert not state.open
    assert state.next_open == second + timedelta(minutes=30)
    assert not window_state([repeat], [], first + timedelta(minutes=40)).open  # 01:10 EST
    assert window_state([repeat], [], second + timedelta(minutes=30)).open


# --- describe_next ------------------------------------------------------------------------------


def test_describe_closes_today() -> None:
    now = local(BERLIN, 2024, 6, 3, 14, 55)
    text = describe_next(window_state([BUSINESS], [], now), BERLIN, now)
    assert text == "window closes 17:00 Europe/Berlin, in 2h 5m"


def test_describe_opens_tomorrow_with_weekday() -> None:
    now = local(BERLIN, 2024, 6, 3, 19)
    text = describe_next(window_state([BUSINESS], [], now), BERLIN, now)
    assert text == "window opens Tue 09:00 Europe/Berlin, in 14h"


def test_describe_far_opening_carries_the_date_and_other_zone() -> None:
    now = local(BERLIN, 2024, 6, 3, 19)
    monthly = allow("0 9 1 * *", "1h", name="monthly")
    text = describe_next(window_state([monthly], [], now), "America/New_York", now)
    assert text == "window opens Mon 2024-07-01 03:00 America/New_York, in 27d 14h"


def test_describe_frozen() -> None:
    now = utc(2024, 6, 3, 11, 59, 30)
    state = window_state([], [FreezeSpec("f", utc(2024, 6, 3), utc(2024, 6, 3, 12))], now)
    assert describe_next(state, "UTC", now) == "frozen until 12:00 UTC, in 30s"


def test_describe_always_open() -> None:
    now = utc(2024, 6, 3)
    assert describe_next(window_state([], [], now), BERLIN, now) == (
        "window open, no close scheduled"
    )


# --- validation and parsing ---------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["0 9 * * 1-5", "*/15 2-4 * * *", "@daily", "0 9 * * MON"])
def test_valid_cron(expr: str) -> None:
    assert validate_cron(expr) is None


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "empty"),
        ("0 9 * *", "expected 5 fields"),
        ("0 9 * * * 0", "expected 5 fields"),
        ("0 25 * * *", "invalid cron expression"),
        ("0 9 * * funday", "invalid cron expression"),
        ("@reboot", "invalid cron expression"),
        ("0 9 31 2 *", "never fires"),
    ],
)
def test_invalid_cron(expr: str, fragment: str) -> None:
    problem = validate_cron(expr)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Sao_Paulo"])
def test_valid_timezone(name: str) -> None:
    assert validate_timezone(name) is None


@pytest.mark.parametrize("name", ["", "Europe", "Europe/Berln", "utc", "../etc/passwd", " UTC"])
def test_invalid_timezone(name: str) -> None:
    problem = validate_timezone(name)
    assert problem is not None and "IANA" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("8h", timedelta(hours=8)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("45s", timedelta(seconds=45)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
        (" 2D ", timedelta(days=2)),
        ("90", timedelta(seconds=90)),  # bare seconds, as argocd's --timeout takes them
        ("300ms", timedelta(milliseconds=300)),
        ("1s500ms", timedelta(seconds=1, milliseconds=500)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0", "m", "ms", "1.5h", "30m1h", "5ms1s", "1w", "-5m", "0m", "1h 30m"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_specs_refuse_what_window_state_cannot_evaluate() -> None:
    with pytest.raises(ValueError, match="window 'w': expected 5 fields"):
        WindowSpec("w", "0 9 * *", timedelta(hours=1), BERLIN, "allow")
    with pytest.raises(ValueError, match="unknown time zone"):
        WindowSpec("w", "0 9 * * *", timedelta(hours=1), "Mars/Olympus", "allow")
    with pytest.raises(ValueError, match="duration must be positive"):
        WindowSpec("w", "0 9 * * *", timedelta(0), BERLIN, "allow")
    with pytest.raises(ValueError, match="kind"):
        WindowSpec("w", "0 9 * * *", timedelta(hours=1), BERLIN, "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTC offset"):
        FreezeSpec("f", datetime(2024, 1, 1), utc(2024, 1, 2))
    with pytest.raises(ValueError, match="after start"):
        FreezeSpec("f", utc(2024, 1, 2), utc(2024, 1, 1))


# --- properties against a brute-force reference, around DST changes ----------------------------


@cache
def _transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """UTC instants at which `zone` changes its offset during `year`, found by scanning."""
    tz = ZoneInfo(zone)
    found = []
    t, end = utc(year, 1, 1), utc(year + 1, 1, 1)
    while t < end:
        nxt = t + timedelta(hours=1)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = t, nxt  # offset changes in (lo, hi]; narrow to the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        t = nxt
    return tuple(found)


# Sao Paulo still had DST in 2018 (switching at local midnight); Lord Howe shifts by 30 minutes.
DST_ZONES = {
    "Europe/Berlin": 2024,
    "America/New_York": 2024,
    "Australia/Sydney": 2024,
    "America/Sao_Paulo": 2018,
    "Australia/Lord_Howe": 2024,
}
ANCHORS = [(zone, t) for zone, year in DST_ZONES.items() for t in _transitions(zone, year)]
ALL_ZONES = [*DST_ZONES, "Asia/Kolkata"]


def test_every_dst_zone_has_two_transitions() -> None:
    assert all(len(_transitions(zone, year)) == 2 for zone, year in DST_ZONES.items())


def _length(spec: WindowSpec) -> timedelta:
    """At least the longest an occurrence can last (the reference's look-back); a wall-clock
    end can make an occurrence a DST shift longer than a day or a week."""
    if spec.end is not None:
        return timedelta(days=2 if spec.end.weekday is None else 8)
    assert spec.duration is not None
    return spec.duration


def _ref_end_instant(wall: datetime, zone: ZoneInfo, later: bool) -> datetime:
    """Brute force: scan UTC minutes around `wall` for those the zone shows as `wall`; none
    means a gap (end at the first minute shown after it), two means a repeat."""
    hits, after = [], None
    near = wall.replace(tzinfo=zone).astimezone(UTC)  # only where to start looking
    t, stop = near - timedelta(hours=3), near + timedelta(hours=3)
    while t < stop:
        shown = t.astimezone(zone).replace(tzinfo=None)
        if shown == wall:
            hits.append(t)
        elif shown > wall and after is None:
            after = t
        t += timedelta(minutes=1)
    if not hits:
        assert after is not None
        return after
    return hits[-1] if later else hits[0]


def _ref_end(spec: WindowSpec, fire: datetime) -> datetime:
    """The occurrence's end: elapsed duration, or the next local wall time the end names."""
    if spec.end is None:
        assert spec.duration is not None
        return fire + spec.duration
    zone = ZoneInfo(spec.timezone)
    wall = fire.astimezone(zone).replace(tzinfo=None)
    day = wall.date()
    while True:
        at = datetime(day.year, day.month, day.day, spec.end.hour, spec.end.minute)
        if at > wall and spec.end.weekday in (None, at.weekday()):
            return _ref_end_instant(at, zone, later=spec.kind == "deny")
        day += timedelta(days=1)


def _ref_fires(spec: WindowSpec, lo: datetime, hi: datetime) -> list[datetime]:
    """Raw croniter fire times in (lo, hi], UTC, started from an hour before `lo`."""
    it = croniter(spec.cron, (lo - timedelta(hours=1)).astimezone(ZoneInfo(spec.timezone)))
    out: list[datetime] = []
    while (fire := it.get_next(datetime).astimezone(UTC)) <= hi:
        if fire > lo:
            out.append(fire)
    return out


def _ref_occurrences(
    spec: WindowSpec, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime]]:
    """croniter's fires as occurrences, with the repeated-hour rule applied fire by fire: for a
    fixed-time cron, the second fire of a local time that occurs twice is dropped for an allow
    window, and for a deny window it stretches back to the first (so the deny covers both)."""
    zone = ZoneInfo(spec.timezone)
    fixed = not any(field.startswith("*") for field in spec.cron.split()[:2])
    out = []
    for fire in _ref_fires(spec, lo, hi):
        wall = fire.astimezone(zone)
        first = wall.replace(fold=0).astimezone(UTC)
        if fixed and wall.fold == 1 and first != fire:
            if spec.kind == "deny":
                out.append((first, _ref_end(spec, fire)))
            continue
        out.append((fire, _ref_end(spec, fire)))
    return out


class _Reference:
    """Open/closed at any instant up to `until`, from every occurrence listed individually."""

    def __init__(
        self,
        windows: Sequence[WindowSpec],
        freezes: Sequence[FreezeSpec],
        now: datetime,
        until: datetime,
    ) -> None:
        self.until = until
        self.windows = windows
        self.occurrences = [(w.kind, _ref_occurrences(w, now - _length(w), until)) for w in windows]
        self.freezes = [(f.start, f.end) for f in freezes]

    def is_open(self, t: datetime) -> bool:
        assert t <= self.until
        cover = [(kind, any(a <= t < b for a, b in occ)) for kind, occ in self.occurrences]
        if any(kind == "deny" and hit for kind, hit in cover):
            return False
        if any(a <= t < b for a, b in self.freezes):
            return False
        allows = [hit for kind, hit in cover if kind == "allow"]
        return not allows or any(allows)

    def boundaries(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Every occurrence or freeze edge in (lo, hi): the only places a flip could hide."""
        edges = {e for _, occ in self.occurrences for pair in occ for e in pair}
        edges |= {e for pair in self.freezes for e in pair}
        return sorted(e for e in edges if lo < e < hi)


def _ref_open_at(windows: Sequence[WindowSpec], freezes: Sequence[FreezeSpec], t: datetime) -> bool:
    return _Reference(windows, freezes, t, t).is_open(t)


@st.composite
def _window(draw: st.DrawFn, zone: str) -> WindowSpec:
    minute = draw(st.sampled_from(["0", "15", "30", "45", "*/20"]))
    hour = draw(st.sampled_from(["0", "1", "2", "3", "9", "22", "23", "1-3", "*/6", "2,14"]))
    dow = draw(st.sampled_from(["*", "*", "1-5", "0,6", "3"]))
    minutes = draw(st.sampled_from([1, 30, 60, 61, 90, 150, 480, 1470]) | st.integers(1, 1500))
    tz = draw(st.sampled_from([zone, zone, zone, *ALL_ZONES]))
    kind: Literal["allow", "deny"] = "deny" if draw(st.integers(0, 2)) == 0 else "allow"
    name, cron = f"w{draw(st.integers(0, 99))}", f"{minute} {hour} * * {dow}"
    if draw(st.integers(0, 3)) == 0:  # a wall-clock end, often inside a DST gap or repeat
        weekday = draw(st.none() | st.integers(0, 6))
        end_hour = draw(st.sampled_from([0, 1, 2, 3, 7, 23]))
        end = WallTime(weekday, end_hour, draw(st.sampled_from([0, 30, 59])))
        return WindowSpec(name, cron, None, tz, kind, end)
    return WindowSpec(name, cron, timedelta(minutes=minutes), tz, kind)


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[WindowSpec], list[FreezeSpec], datetime]:
    zone, anchor = draw(st.sampled_from(ANCHORS))
    # Minute-aligned instants hit occurrence boundaries exactly; others land anywhere.
    offset = draw(
        st.integers(-14 * 24 * 60, 14 * 24 * 60).map(lambda m: timedelta(minutes=m))
        | st.integers(-14 * 86400, 14 * 86400).map(lambda s: timedelta(seconds=s, microseconds=7))
    )
    now = anchor + offset
    windows = draw(st.lists(_window(zone), min_size=1, max_size=3))
    freezes = []
    if draw(st.booleans()):
        start = now + timedelta(minutes=draw(st.integers(-3000, 3000)))
        length = timedelta(minutes=draw(st.integers(1, 4000)))
        shown_in = ZoneInfo(draw(st.sampled_from(ALL_ZONES)))
        freezes.append(
            FreezeSpec("f", start.astimezone(shown_in), (start + length).astimezone(shown_in))
        )
    return windows, freezes, now


PROPERTY = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(_case())
def test_state_and_flips_match_reference(
    case: tuple[list[WindowSpec], list[FreezeSpec], datetime],
) -> None:
    windows, freezes, now = case
    state = window_state(windows, freezes, now)
    ref = _Reference(windows, freezes, now, now + timedelta(days=10))

    assert state.open == ref.is_open(now)
    assert (state.blocker_kind is None) == state.open == (state.reason is None)
    frozen = any(f.start <= now < f.end for f in freezes)
    assert (state.blocker_kind == "frozen") == frozen

    # Flips alternate: the first one leaves the current state.
    first, second = (
        (state.next_close, state.next_open) if state.open else (state.next_open, state.next_close)
    )
    if first is None:
        assert second is None
    for flip, becomes in ((state.next_open, True), (state.next_close, False)):
        if flip is None:
            continue
        assert flip > now
        check = ref if flip <= ref.until else _Reference(windows, freezes, flip - US, flip)
        assert check.is_open(flip) == becomes
        assert check.is_open(flip - US) != becomes

    # Nothing flips before the first reported flip, or between the first and the second.
    end_first = first if first is not None else ref.until
    for t in ref.boundaries(now, min(end_first, ref.until)):
        assert ref.is_open(t) == state.open, t
    if first is not None and first < ref.until:
        for t in ref.boundaries(first, min(second or ref.until, ref.until)):
            assert ref.is_open(t) != state.open, t


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(_case(), st.integers(0, 200))
def test_lookback_counts_occurrences_started_before_now(
    case: tuple[list[WindowSpec], list[FreezeSpec], datetime],
    back: int,
) -> None:
    """Asking a little later inside the same state gives the same flips (no lost look-back)."""
    windows, freezes, now = case
    state = window_state(windows, freezes, now)
    later = now + timedelta(minutes=back)
    first = state.next_close if state.open else state.next_open
    if first is not None and later >= first:
        return
    again = window_state(windows, freezes, later)
    assert again.open == state.open
    assert (again.next_open, again.next_close) == (state.next_open, state.next_close)
    assert again.open == _ref_open_at(windows, freezes, later)
