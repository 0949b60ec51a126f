"""What every target that splits traffic refuses alike: a weight that is not a percentage, a
split with nothing live, a canary that is the live colour. One wording for all of them."""

from __future__ import annotations

from shipdeck.core.ports import Color


def weight_problem(percent: object) -> str | None:
    """Why `percent` is not a canary weight (bool is an int to Python, not to us), or None."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        return f"canary weight must be a percentage from 0 to 100, got {percent!r}"
    return None


def split_problem(percent: int, canary: Color, live: object) -> str | None:
    """Why `percent` of the traffic cannot go to `canary` while `live` serves, or None."""
    if live not in ("blue", "green"):
        return f"cannot send {percent}% to {canary}: nothing is live to split with"
    if live == canary:
        return f"cannot send {percent}% to {canary} as a canary: it is live"
    return None
