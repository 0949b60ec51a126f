"""`[windows]` and `[freezes]`: when an environment may (or may not) be changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shipdeck.core.domain.config.collector import Collector, join
from shipdeck.core.domain.occurrences import WallTime, parse_wall_time, to_utc
from shipdeck.core.domain.windows import (
    FreezeSpec,
    WindowSpec,
    parse_duration,
    validate_cron,
    validate_timezone,
)


def parse_windows(c: Collector, raw: dict[str, Any]) -> dict[str, WindowSpec]:
    out: dict[str, WindowSpec] = {}
    for wname, wraw in raw.items():
        path = f"windows.{wname}"
        w = c.table(wraw, path)
        c.keys(w, path, {"cron", "duration", "end", "timezone", "kind"})
        cron = c.get(w, path, "cron", str, required=True)
        if cron is not None and (problem := validate_cron(cron)):
            c.err(f"{path}.cron", problem)
            cron = None
        duration, end, length_ok = _window_length(c, w, path)
        tz = c.get(w, path, "timezone", str, "UTC")
        if (problem := validate_timezone(tz)) is not None:
            c.err(f"{path}.timezone", problem)
            tz = None
        kind = c.choice(w, path, "kind", ("allow", "deny"), "allow")
        if cron and length_ok and tz and kind:
            allow_or_deny: Literal["allow", "deny"] = "deny" if kind == "deny" else "allow"
            out[wname] = WindowSpec(wname, cron, duration, tz, allow_or_deny, end)
    return out


def _window_length(
    c: Collector, w: Mapping[str, Any], path: str
) -> tuple[timedelta | None, WallTime | None, bool]:
    """A window lasts an elapsed `duration` or until a local wall-clock `end`: exactly one."""
    if "duration" in w and "end" in w:
        c.err(f"{path}.end", "use either duration or end, not both")
        return None, None, False
    if "end" not in w:
        duration = duration_at(c, w, path, "duration", required=True)
        return duration, None, duration is not None
    text = c.get(w, path, "end", str, required=True)
    if text is None:
        return None, None, False
    try:
        return None, parse_wall_time(text), True
    except ValueError as exc:
        c.err(f"{path}.end", str(exc))
        return None, None, False


def duration_at(
    c: Collector, raw: Mapping[str, Any], path: str, key: str, required: bool
) -> timedelta | None:
    """A duration string such as "30m" or "1h30m"; None (recorded when malformed) without one."""
    text = c.get(raw, path, key, str, required=required)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        c.err(join(path, key), str(exc))
        return None


def parse_freezes(c: Collector, raw: dict[str, Any]) -> dict[str, FreezeSpec]:
    out: dict[str, FreezeSpec] = {}
    for fname, fraw in raw.items():
        path = f"freezes.{fname}"
        f = c.table(fraw, path)
        c.keys(f, path, {"start", "end", "reason", "timezone"})
        zone = None
        if "timezone" in f:
            tz = c.get(f, path, "timezone", str)
            if tz is not None and (problem := validate_timezone(tz)) is not None:
                c.err(f"{path}.timezone", problem)
            elif tz is not None:
                zone = ZoneInfo(tz)
        start = _instant(c, f, path, "start", zone)
        end = _instant(c, f, path, "end", zone)
        reason = c.get(f, path, "reason", str, "")
        if start and end:
            if end <= start:
                c.err(f"{path}.end", "must be after start")
            else:
                out[fname] = FreezeSpec(fname, start, end, reason)
    return out


def _instant(
    c: Collector, raw: Mapping[str, Any], path: str, key: str, zone: ZoneInfo | None
) -> datetime | None:
    """A freeze bound: with an offset, or a local wall-clock time in the freeze's `timezone`
    (DST-correct; a repeated local time starts at its first and ends at its second occurrence,
    so the freeze covers both)."""
    value = c.get(raw, path, key, (datetime, str), required=True)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            c.err(join(path, key), f"not an ISO 8601 date-time: '{value}'")
            return None
    if isinstance(value, datetime) and value.tzinfo is None:
        if zone is not None:
            return to_utc(value, zone, later=key == "end").astimezone(zone)
        c.err(
            join(path, key),
            "needs a UTC offset (e.g. 2026-12-20T00:00:00+01:00) or a timezone key for the freeze",
        )
        return None
    return value
