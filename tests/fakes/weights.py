"""TrafficWeights and MetricsSource ports for the canary's engine tests: a weights recorder that
keeps its target's call log (so a test sees weights and switches in one order, fenced like the
target), a metrics source the test scripts per canary weight, and a query port (Prometheus')
answering per color."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, other_color

HEALTHY: Mapping[str, float] = {"error_rate": 0.001, "latency_p95_ms": 100.0}


@dataclass
class RecordingWeights:
    """Records `set_weight` through its target's `record` (which fences the epoch)."""

    record: Callable[[str, Any, int], None]
    percent: int = 0

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        self.record("set_weight", (canary_color, percent, epoch), epoch)
        self.percent = percent

    def weight(self) -> int:
        return self.percent


@dataclass
class ScriptedMetrics:
    """Answers per app and canary weight: `script[(app, weight)]` is (canary values, stable
    values), HEALTHY for both where the script says nothing; `failing` makes the source raise.
    `weight_of` and `live_of` read the fake targets, so the answer follows the real split."""

    weight_of: Callable[[str], int]
    live_of: Callable[[str], Color | None]
    script: dict[tuple[str, int], tuple[Mapping[str, float], Mapping[str, float]]] = field(
        default_factory=dict
    )
    failing: bool = False
    asked: list[tuple[str, Color, int, float]] = field(default_factory=list)

    def sample(self, app: str, env: str, color: Color, window: float) -> dict[str, float]:
        weight = self.weight_of(app)
        self.asked.append((app, color, weight, window))
        if self.failing:
            raise AdapterError("fake metrics: unreachable")
        canary, stable = self.script.get((app, weight), (HEALTHY, HEALTHY))
        return dict(canary if color == other_color(self.live_of(app)) else stable)


@dataclass
class ScriptedQueries:
    """A MetricQueries port: each query's answer is `answers[color]` for the color it names
    (`color="blue"` rendered into it), None (no value) where unscripted; `failing` raises. Every
    (address, query) asked is kept, so a test sees what the engine rendered."""

    answers: dict[str, float | None] = field(default_factory=dict)
    failing: bool = False
    asked: list[tuple[str, str]] = field(default_factory=list)

    def value(self, address: str, query: str) -> float | None:
        self.asked.append((address, query))
        if self.failing:
            raise AdapterError("prometheus 127.0.0.1:9: cannot reach: connection refused")
        return next((v for c, v in self.answers.items() if f'color="{c}"' in query), None)
