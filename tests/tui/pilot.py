"""Waiting for a Textual app to settle: its screen loaded and no worker still running.

The deadline only keeps a broken test from hanging; no assertion is made about how long it took.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerState

DEADLINE = 20.0
S = TypeVar("S")


async def until(
    pilot: Pilot[Any], condition: Callable[[], bool], deadline: float = DEADLINE
) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {deadline}s")
        await pilot.pause(0.02)


def idle(pilot: Pilot[Any]) -> bool:
    app = pilot.app
    busy = any(
        w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        for w in app.workers
        if w.group != "poll"
    )
    return not busy and bool(getattr(app.screen, "loaded", True))


async def settle(pilot: Pilot[Any], deadline: float = DEADLINE) -> None:
    """Until the visible screen has its data and every worker but the poll is done."""
    await until(pilot, lambda: idle(pilot), deadline)
    await pilot.pause()
    await until(pilot, lambda: idle(pilot), deadline)


async def open_section(pilot: Pilot[Any], key: str, screen_type: type[S]) -> S:
    """Press a section's key (as a person would) and wait until that screen has its data."""
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, screen_type)
    return screen


_SVG_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#terminal(?:-\d+)?-line-(\d+)\)">([^<]*)</text>'
)


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain lines (read back from Textual's own SVG export)."""
    lines: dict[int, dict[int, str]] = {}
    for m in _SVG_TEXT.finditer(app.export_screenshot()):
        col = round(float(m.group(1)) / 12.2)
        lines.setdefault(int(m.group(2)), {})[col] = html.unescape(m.group(3)).replace("\xa0", " ")
    out = []
    for i in range(max(lines, default=-1) + 1):
        row = ""
        for col, part in sorted(lines.get(i, {}).items()):
            row = row.ljust(col)[:col] + part
        out.append(row.rstrip())
    return "\n".join(out)
