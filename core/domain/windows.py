"""Deployment windows and freezes: may an environment change now, and when does that flip?

Pure: every answer is a function of the specs and a clock passed in, so the policy check, the TUI
and `plan show` agree and tests can pin any instant.

Semantics (Argo CD sync windows: schedule + duration, allow/deny, deny wins; docs/windows.md)
- A window occurrence starts at each cron fire time and lasts `duration` of real elapsed time,
  or, with `end` instead, until the next time the local wall clock shows that time ("07:00" daily
  or "Mon 07:00" weekly), so a weekly freeze ending Monday 07:00 Berlin ends at 07:00 on both
  sides of a DST change. The cron is evaluated on the wall clock of the window's IANA time zone,
  so "0 9 * * 1-5" in Europe/Berlin means 09:00 local before and after a DST change, while an 8h
  duration that spans the change still lasts 8 real hours (its local closing time moves).
- Local times a DST change makes special (core/domain/occurrences.py has the rules): a fire in
  the spring-forward gap follows croniter 7; a fixed local time that occurs twice on the
  fall-back night opens an allow window once (the first) and keeps a deny window closed across
  both occurrences.
- With allow windows, the environment is open only inside at least one allow occurrence; with
  none it is always allowed. Deny occurrences and freezes close it regardless of allow windows.
- Intervals include their start and exclude their end: [start, end).
- `next_open` / `next_close` are the first instants after `now` at which the overall state
  becomes open / closed, searched at most `HORIZON` ahead (None when there is no such instant in
  that range). Both are filled when known: while closed, `next_close` is when the coming opening
  ends. All returned instants are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from shipdeck.core.domain.occurrences import Interval, WallTime, merged_runs

HORIZON = timedelta(days=400)

# A fixed reference instant for "does this expression ever fire?", so validation is reproducible.
_CRON_PROBE = datetime(2000, 1, 1, tzinfo=UTC)
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")

BlockerKind = Literal["window_closed", "frozen"]


@dataclass(frozen=True)
class WindowSpec:
    """One window: opens at each cron fire and lasts `duration` of elapsed time, or until the
    next local wall-clock `end` (exactly one of the two)."""

    name: str
    cron: str
    duration: timedelta | None
    timezone: str
    kind: Literal["allow", "deny"]
    end: WallTime | None = None

    def __post_init__(self) -> None:
        # Rejected here so window_state never meets a spec it cannot evaluate.
        problem = (
            validate_cron(self.cron)
            or validate_timezone(self.timezone)
            or _length_problem(self.duration, self.end)
            or (None if self.kind in ("allow", "deny") else "kind must be 'allow' or 'deny'")
        )
        if problem:
            raise ValueError(f"window {self.name!r}: {problem}")


def _length_problem(duration: timedelta | None, end: WallTime | None) -> str | None:
    if (duration is None) == (end is None):
        return "needs exactly one of duration and end"
    if duration is not None and duration <= timedelta(0):
        return "duration must be positive"
    return None


@dataclass(frozen=True)
class FreezeSpec:
    name: str
    start: datetime
    end: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"freeze {self.name!r}: start and end need a UTC offset")
        if self.end <= self.start:
            raise ValueError(f"freeze {self.name!r}: end must be after start")


@dataclass(frozen=True)
class WindowState:
    open: bool
    reason: str | None
    next_open: datetime | None
    next_close: datetime | None
    blocker_kind: BlockerKind | None

    def as_dict(self) -> dict[str, Any]:
        """The window as status and plan documents show it (the blocker kind is the plan's)."""
        return {
            "open": self.open,
            "reason": self.reason,
            "next_open": self.next_open.isoformat() if self.next_open else None,
            "next_close": self.next_close.isoformat() if self.next_close else None,
        }


def validate_cron(expr: str) -> str | None:
    """Return why `expr` is not a usable 5-field cron expression (or @alias), else None."""
    fields = expr.split()
    if not fields:
        return "empty cron expression"
    if not fields[0].startswith("@") and len(fields) != 5:
        return (
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
            f" in '{expr}'"
        )
    try:
        croniter(expr, _CRON_PROBE).get_next(datetime)
    except CroniterBadDateError:
        return f"'{expr}' never fires (no such date)"
    except (CroniterBadCronError, ValueError, TypeError) as exc:
        return f"invalid cron expression '{expr}': {exc}"
    return None


def validate_timezone(name: str) -> str | None:
    """Return why `name` is not a known IANA time zone, else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin or UTC)"
    return None


def parse_duration(text: str) -> timedelta:
    """Parse "90m", "8h", "1d12h", "45s", "300ms" (units d, h, m, s, ms, largest first), or bare
    seconds ("30", as argocd takes them), into a timedelta. The one parser for every duration
    shipdeck takes: options such as --timeout, --until and --since, and shipdeck.toml values."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        cleaned += "s"
    match = _DURATION_RE.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(
            f"invalid duration '{text}': use whole numbers with units d, h, m, s, ms, largest"
            " first, or bare seconds, e.g. 90m, 8h, 1d12h, 45s, 300ms, 30"
        )
    days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    result = timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis
    )
    if result <= timedelta(0):
        raise ValueError(f"invalid duration '{text}': must be longer than zero")
    return result


class _Track:
    """One source of intervals (a window or a freeze), positioned at the sweep's instant."""

    def __init__(
        self,
        kind: Literal["allow", "deny", "freeze"],
        name: str,
        tz: str,
        runs: Iterator[Interval],
        note: str = "",
    ) -> None:
        self.kind = kind
        self.name = name
        self.tz = tz
        self.note = note
        self._runs = runs
        self.current: Interval | None = next(runs, None)

    def advance(self, t: datetime) -> None:
        """Move to the first interval that ends after `t`."""
        while self.current is not None and self.current[1] <= t:
            self.current = next(self._runs, None)

    def covers(self, t: datetime) -> bool:
        return self.current is not None and self.current[0] <= t < self.current[1]

    def next_boundary(self, t: datetime) -> datetime | None:
        if self.current is None:
            return None
        return self.current[0] if self.current[0] > t else self.current[1]


def _is_open(tracks: Sequence[_Track], t: datetime) -> bool:
    allows = [tr for tr in tracks if tr.kind == "allow"]
    if allows and not any(tr.covers(t) for tr in allows):
        return False
    return not any(tr.covers(t) for tr in tracks if tr.kind != "allow")


def _closed_reason(tracks: Sequence[_Track], t: datetime) -> tuple[str, BlockerKind]:
    """Every cause that keeps the environment closed at `t`, freezes first, as one sentence."""
    parts: list[str] = []
    frozen = False
    for tr in tracks:
        if tr.kind == "freeze" and tr.covers(t):
            assert tr.current is not None
            frozen = True
            why = f" ({tr.note})" if tr.note else ""
            parts.append(f"frozen by '{tr.name}'{why} until {_stamp(tr.current[1], tr.tz)}")
    for tr in tracks:
        if tr.kind == "deny" and tr.covers(t):
            assert tr.current is not None
            parts.append(f"deny window '{tr.name}' is active until {_stamp(tr.current[1], tr.tz)}")
    allows = sorted(tr.name for tr in tracks if tr.kind == "allow")
    if allows and not any(tr.covers(t) for tr in tracks if tr.kind == "allow"):
        parts.append(f"outside every allow window ({', '.join(allows)})")
    return "; ".join(parts), "frozen" if frozen else "window_closed"


def window_state(
    windows: Sequence[WindowSpec], freezes: Sequence[FreezeSpec], now: datetime
) -> WindowState:
    """Whether changes may start at `now`, why not, and when that next flips either way."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    limit = now + HORIZON
    tracks = [_Track(w.kind, w.name, w.timezone, merged_runs(w, now, limit)) for w in windows]
    tracks += [
        # UTC before comparing: aware datetimes sharing one zone compare by wall clock.
        _Track(
            "freeze",
            f.name,
            _zone_label(f.end),
            iter([(f.start.astimezone(UTC), f.end.astimezone(UTC))]),
            f.reason,
        )
        for f in freezes
    ]
    for tr in tracks:
        tr.advance(now)
    is_open = _is_open(tracks, now)
    reason, kind = (None, None) if is_open else _closed_reason(tracks, now)
    # Flips can only happen where some interval starts or ends; walk those in time order.
    flips: dict[bool, datetime] = {}
    state, t = is_open, now
    while len(flips) < 2:
        bounds = [b for tr in tracks if (b := tr.next_boundary(t)) is not None]
        if not bounds or (t := min(bounds)) > limit:
            break
        for tr in tracks:
            tr.advance(t)
        if _is_open(tracks, t) != state:
            state = not state
            flips[state] = t
    return WindowState(
        open=is_open,
        reason=reason,
        next_open=flips.get(True),
        next_close=flips.get(False),
        blocker_kind=kind,
    )


def _zone_label(at: datetime) -> str:
    """Name a freeze's own zone when it is an IANA zone, else fall back to UTC for display."""
    return at.tzinfo.key if isinstance(at.tzinfo, ZoneInfo) else "UTC"


def _stamp(at: datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%a %Y-%m-%d %H:%M} {tz}"


def _relative(delta: timedelta) -> str:
    """Two most significant units, e.g. "3d 2h", "2h 5m", "14h", "45m", "30s"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m")]
    first = next(i for i, (value, _) in enumerate(units) if value)
    return " ".join(f"{value}{unit}" for value, unit in units[first : first + 2] if value)


def _when(at: datetime, tz: str, now: datetime) -> str:
    zone = ZoneInfo(tz)
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    days_ahead = (local.date() - today).days
    if days_ahead == 0:
        clock = f"{local:%H:%M}"
    elif 0 < days_ahead < 7:
        clock = f"{local:%a %H:%M}"
    else:
        clock = f"{local:%a %Y-%m-%d %H:%M}"
    return f"{clock} {tz}, in {_relative(at - now)}"


def describe_next(state: WindowState, tz: str, now: datetime) -> str:
    """One line for people: when the state changes next, shown in `tz`."""
    if state.open:
        if state.next_close is None:
            return "window open, no close scheduled"
        return f"window closes {_when(state.next_close, tz, now)}"
    prefix = "frozen until" if state.blocker_kind == "frozen" else "window opens"
    if state.next_open is None:
        lead = "frozen" if state.blocker_kind == "frozen" else "window closed"
        return f"{lead}, no opening within {HORIZON.days} days"
    return f"{prefix} {_when(state.next_open, tz, now)}"
