"""How plans read on screen: state words and colours, times, and safe text from people and targets.

Plan names, comments, reasons, results and step details come from people and remote systems, so
they pass through strip_controls and become rich Text (never markup): `[bold]` shows as typed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.text import Text

from shipdeck.core.domain.redact import strip_controls

if TYPE_CHECKING:
    from shipdeck.core.services.plan_history import PlanHistory

STATE_STYLE = {
    "draft": "dim",
    "awaiting_approval": "bold yellow",
    "approved": "bold green",
    "running": "bold cyan",
    "succeeded": "green",
    "failed": "bold red",
    "rolled_back": "bold magenta",
    "aborted": "dim",
}
STATE_MARK = {
    "draft": "·",
    "awaiting_approval": "…",
    "approved": "✓",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "rolled_back": "↺",
    "aborted": "■",
}


def safe(value: object) -> str:
    """One line of untrusted text: controls and escapes gone, newlines flattened."""
    return strip_controls(str(value)).replace("\n", " ").replace("\t", " ")


def state_label(state: str) -> str:
    return state.replace("_", " ")


def state_text(state: str, mark: bool = True) -> Text:
    shown = f"{STATE_MARK.get(state, '?')} {state_label(state)}" if mark else state_label(state)
    return Text(shown, style=STATE_STYLE.get(state, ""))


def in_zone(at: datetime, zone: str = "UTC") -> datetime:
    """Every time on a screen is shown in that screen's one zone, which the screen labels."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(zone))


def when(at: datetime | None, zone: str = "UTC") -> str:
    """Short absolute time in the screen's zone (UTC unless the screen says otherwise)."""
    return "-" if at is None else f"{in_zone(at, zone):%m-%d %H:%M}"


def clock(at: datetime, zone: str = "UTC") -> str:
    return f"{in_zone(at, zone):%H:%M:%S}"


def elapsed(delta: timedelta | None) -> str:
    """m:ss under an hour, h:mm:ss above."""
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def clip_words(text: str, width: int) -> str:
    """Cut at the last word boundary that fits, so a note never ends mid-word."""
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 0)]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,;:-") + "…"


def history_lines(history: PlanHistory, result: str, zone: str = "UTC") -> Text:
    """A finished plan's truth now: a rollback's from/to, who and why; how its own run ended;
    and which later plans replaced what it shipped."""
    text = Text()
    rb = history.rollback
    if rb is not None:
        text.append(f"\n↺ {safe(rb.label)}", style="bold magenta")
        text.append(f" by {safe(rb.by)}: ", style="")
        text.append(safe(rb.reason) if rb.reason else "no reason given", style="")
    if result:
        text.append("\nrun: ", style="dim")
        text.append(safe(result), style="dim")
    for x in history.superseded:
        text.append("\n↺ " if x.rolled_back else "\n⤳ ", style="bold magenta")
        verb = "rolled back by" if x.rolled_back else "superseded by"
        text.append(f"{x.app}: {verb} ")
        text.append(x.plan, style="bold")
        text.append(f" ({safe(x.version)} live since {when(x.at, zone)})")
    return text
