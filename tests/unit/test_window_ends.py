"""Windows that end at a local wall-clock time, fixed times the clock repeats, and minute crons,
on the 2026 DST changes of Europe/Berlin (03-29, 10-25) and America/New_York (03-08, 11-01)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from shipdeck.core.domain.occurrences import parse_wall_time
from shipdeck.core.domain.windows import WindowSpec, WindowState, parse_duration, window_state

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
US = timedelta(microseconds=1)


def local(tz: str, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)  # type: ignore[misc]


def until(
    cron: str, end: str, tz: str, kind: Literal["allow", "deny"] = "deny", name: str = "w"
) -> WindowSpec:
    return WindowSpec(name, cron, None, tz, kind, parse_wall_time(end))


def lasting(
    cron: str, duration: str, tz: str, kind: Literal["allow", "deny"] = "allow"
) -> WindowSpec:
    return WindowSpec("w", cron, parse_duration(duration), tz, kind)


@pytest.mark.parametrize(
    ("friday", "monday"),
    [
        ((2026, 10, 23), (2026, 10, 26)),  # Berlin falls back on Sunday 10-25
        ((2026, 3, 27), (2026, 3, 30)),  # Berlin springs forward on Sunday 03-29
        ((2026, 6, 5), (2026, 6, 8)),  # no change
    ],
)
def test_weekend_freeze_ends_monday_0700_local_on_both_sides_of_a_change(
    friday: tuple[int, int, int], monday: tuple[int, int, int]
) -> None:
    weekend = until("0 18 * * fri", "Mon 07:00", BERLIN, name="weekend")
    state = window_state([weekend], [], local(BERLIN, *friday, 18))
    assert not state.open
    assert state.next_open == local(BERLIN, *monday, 7)
    assert window_state([weekend], [], local(BERLIN, *monday, 7) - US).next_open == (
        local(BERLIN, *monday, 7)
    )


def test_an_elapsed_duration_would_open_an_hour_early_on_the_fall_back_weekend() -> None:
    # The bug the wall-clock end fixes: 61h is Fri 18:00 -> Mon 07:00 only without a change.
    weekend = lasting("0 18 * * fri", "61h", BERLIN, "deny")
    state = window_state([weekend], [], local(BERLIN, 2026, 10, 23, 18))
    assert state.next_open == local(BERLIN, 2026, 10, 26, 6)


@pytest.mark.parametrize(
    ("evening", "morning", "hours"),
    [((2026, 3, 7), (2026, 3, 8), 7), ((2026, 10, 31), (2026, 11, 1), 9)],
)
def test_overnight_allow_until_0600_new_york(
    evening: tuple[int, int, int], morning: tuple[int, int, int], hours: int
) -> None:
    night = until("0 22 * * *", "06:00", NEW_YORK, "allow", name="night")
    state = window_state([night], [], local(NEW_YORK, *evening, 22))
    assert state.open
    assert state.next_close == local(NEW_YORK, *morning, 6)
    assert state.next_close - local(NEW_YORK, *evening, 22) == timedelta(hours=hours)


def test_an_end_inside_the_spring_gap_ends_when_the_gap_does() -> None:
    early = until("0 1 * * *", "02:30", BERLIN, "allow")
    state = window_state([early], [], local(BERLIN, 2026, 3, 29, 1))
    assert state.next_close == local(BERLIN, 2026, 3, 29, 3)  # 02:30 does not exist that night


@pytest.mark.parametrize(
    ("kind", "fold"), [("allow", 0), ("deny", 1)]
)  # allow ends at the first 02:30, deny at the second: the narrower and the wider reading
def test_a_repeated_end_time_ends_allow_at_the_first_and_deny_at_the_second(
    kind: Literal["allow", "deny"], fold: int
) -> None:
    spec = until("0 1 * * *", "02:30", BERLIN, kind)
    state = window_state([spec], [], local(BERLIN, 2026, 10, 25, 1))
    flip = state.next_close if kind == "allow" else state.next_open
    assert flip == local(BERLIN, 2026, 10, 25, 2, 30, fold=fold)


def test_a_fixed_time_repeated_on_fall_back_opens_an_allow_window_once_in_new_york() -> None:
    repeat = lasting("30 1 * * *", "20m", NEW_YORK)
    first = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0)
    second = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
    assert window_state([repeat], [], first).open
    assert not window_state([repeat], [], second).open
    assert window_state([repeat], [], first + timedelta(minutes=25)).next_open == local(
        NEW_YORK, 2026, 11, 2, 1, 30
    )


def test_a_fixed_time_repeated_on_fall_back_keeps_a_deny_window_closed_across_both() -> None:
    repeat = until("30 2 * * *", "03:00", BERLIN)
    first = local(BERLIN, 2026, 10, 25, 2, 30, fold=0)
    state = window_state([repeat], [], first)
    assert not state.open
    assert state.next_open == local(BERLIN, 2026, 10, 25, 3)  # 03:00 CET, 90 real minutes on
    assert state.next_open - first == timedelta(minutes=90)


def test_a_minute_cron_opens_in_both_hours_of_the_fall_back_repeat() -> None:
    # A wildcard cron is not a fixed time: it keeps firing through the repeated hour.
    every = lasting("*/5 * * * *", "5m", BERLIN)
    for at in (local(BERLIN, 2026, 10, 25, 2, 7), local(BERLIN, 2026, 10, 25, 2, 7, fold=1)):
        assert window_state([every], [], at) == WindowState(True, None, None, None, None)


@pytest.mark.parametrize(
    "at",
    [
        local(BERLIN, 2026, 3, 29, 1, 59),
        local(BERLIN, 2026, 10, 25, 2, 30, fold=1),
        local(NEW_YORK, 2026, 3, 8, 3),
        local(NEW_YORK, 2026, 11, 1, 1, 59, fold=1),
    ],
)
def test_minute_crons_answer_open_without_a_close(at: datetime) -> None:
    for zone in (BERLIN, NEW_YORK):
        always = lasting("* * * * *", "1m", zone)
        assert window_state([always], [], at) == WindowState(True, None, None, None, None)


def test_a_five_minute_cron_flips_every_few_minutes() -> None:
    every = lasting("*/5 * * * *", "1m", NEW_YORK)
    state = window_state([every], [], local(NEW_YORK, 2026, 3, 8, 3, 0, 30))
    assert state.open
    assert state.next_close == local(NEW_YORK, 2026, 3, 8, 3, 1)
    assert state.next_open == local(NEW_YORK, 2026, 3, 8, 3, 5)


def test_a_minute_deny_keeps_the_environment_closed() -> None:
    busy = lasting("* * * * *", "2m", BERLIN, "deny")
    state = window_state([busy], [], local(BERLIN, 2026, 3, 28, 12))
    assert not state.open and state.next_open is None and state.next_close is None


@pytest.mark.parametrize(
    ("text", "weekday", "hour", "minute"),
    [
        ("07:00", None, 7, 0),
        ("Mon 07:00", 0, 7, 0),
        ("sunday 23:59", 6, 23, 59),
        ("7:05", None, 7, 5),
    ],
)
def test_parse_wall_time(text: str, weekday: int | None, hour: int, minute: int) -> None:
    wall = parse_wall_time(text)
    assert (wall.weekday, wall.hour, wall.minute) == (weekday, hour, minute)


@pytest.mark.parametrize(
    "text", ["", "7", "24:00", "07:60", "Mo 07:00", "Mon", "Mon 07:00 x", "07:0"]
)
def test_parse_wall_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid end"):
        parse_wall_time(text)


def test_a_window_needs_exactly_one_of_duration_and_end() -> None:
    with pytest.raises(ValueError, match="exactly one of duration and end"):
        WindowSpec("w", "0 9 * * *", None, BERLIN, "allow")
    with pytest.raises(ValueError, match="exactly one of duration and end"):
        WindowSpec("w", "0 9 * * *", timedelta(hours=1), BERLIN, "allow", parse_wall_time("17:00"))
