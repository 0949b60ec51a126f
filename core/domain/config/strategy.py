"""`strategy` of an environment or a target, and its `canary` table when there is one.

The canary model (core.domain.canary and its parser, config/canary.py) is imported only for a
workspace that configures a canary: a dozen and a half dataclasses, ~6 ms of every start
(bench/tui_start.py) that a blue/green workspace never uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from shipdeck.core.domain.config.collector import Collector

if TYPE_CHECKING:
    from shipdeck.core.domain.canary import CanarySpec

Strategy = Literal["blue-green", "canary"]
STRATEGIES: tuple[Strategy, ...] = ("blue-green", "canary")


def parse_strategy(c: Collector, raw: Mapping[str, Any], path: str) -> Strategy | None:
    """`strategy`, None when absent (or recorded as wrong)."""
    if "strategy" not in raw:
        return None
    value = c.choice(raw, path, "strategy", STRATEGIES, "blue-green")
    if value == "canary":
        return "canary"
    return "blue-green" if value == "blue-green" else None


def canary_of(c: Collector, raw: Mapping[str, Any], path: str) -> CanarySpec | None:
    """The `canary` table of `raw` (at `path`), None without one or when it is not usable."""
    if "canary" not in raw:
        return None
    from shipdeck.core.domain.config.canary import parse_canary

    return parse_canary(c, raw["canary"], f"{path}.canary")
