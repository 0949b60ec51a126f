"""A local target's live colour: its front proxy's backend file, read without the target.

Status reads it for every local cell (core.bootstrap.make_live_color_reader), the TUI's first
frame among them: importing the target for it (http.client, fencing, the proxy's metrics) was
~4 ms of that frame (bench/tui_start.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from shipdeck.adapters.local.state_files import read_state
from shipdeck.core.ports import Color

BACKEND_FILE = "backend.json"  # which color the front proxy sends traffic to
COLORS: tuple[Color, Color] = ("blue", "green")


def live_color_in(state_dir: str | Path, where: str) -> Color | None:
    """The color the front proxy sends traffic to, read from the target's state folder: what
    `status` shows per cell without building a LocalTarget (bench/status_json.py)."""
    color = read_state(os.path.join(state_dir, BACKEND_FILE), where).get("color")
    return color if color in COLORS else None
