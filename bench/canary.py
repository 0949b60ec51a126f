"""What does the canary cost on top of the waits it is configured with, and how soon after a
weight is set does its analysis decide?

    python -m bench --only canary

A plan of N apps in one wave (--quick: 5, else 20) ships as a canary through the real engine
(lease, journal, intents, audit events; SQLite or --database-url) against targets whose every
call, weight changes included, sleeps `step`, with a metrics source that answers at once:

- `canary.overhead.<db>`: wall time of a healthy canary run / its critical path, which is the
  sleeping target calls the busiest app made (counted, not assumed) plus the pauses and the
  analysis windows the steps ask for. What is left is the engine's own work per canary step
  (journal rows, intent events, looks for abort and promote).
- `canary.analysis.<db>`: each analysis's journal time (weight set -> verdict recorded) / the
  window it must wait (interval x count): how late a verdict lands.
- `canary.rollback.<db>`: a canary whose metrics fail: time from its first weight being set to
  the rollback recorded / one analysis interval (plus the two target calls the way back makes).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bench.harness import Metric, Options, Sample
from bench.orchestration import SleepyTarget, bench_toml, engine_ctx
from shipdeck.core.ports import Color, TrafficWeights

PAUSE = 1.0  # seconds of each timed pause
INTERVAL = 1.0  # seconds of each analysis window (count 1)
WEIGHTS = (10, 50)
CANARY = f"""
[environments.staging.canary]
steps = [{{ set_weight = {WEIGHTS[0]} }}, {{ pause = "{PAUSE:g}s" }},
         {{ set_weight = {WEIGHTS[1]} }}, {{ pause = "{PAUSE:g}s" }}]
[environments.staging.canary.analysis.error_rate]
success = "error_rate < 0.05"
interval = "{INTERVAL:g}s"
"""


class SleepyWeights:
    def __init__(self, target: WeightedTarget) -> None:
        self.target = target

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        self.target.call("set_weight", epoch)
        self.target.weight_now = percent

    def weight(self) -> int:
        return self.target.weight_now


class WeightedTarget(SleepyTarget):
    """SleepyTarget that can split traffic, counting its sleeping calls."""

    def __init__(self, step: float) -> None:
        super().__init__(step)
        self.calls: Counter[str] = Counter()
        self.weight_now = 0

    def call(self, name: str, epoch: int) -> None:
        self._fence(epoch)
        time.sleep(self.step)
        self.calls[name] += 1

    def stage(self, color: Color, release: Any, epoch: int) -> None:
        self.calls["stage"] += 1
        super().stage(color, release, epoch)

    def health(self, color: Color) -> Any:
        self.calls["health"] += 1
        return super().health(color)

    def switch(self, color: Color, epoch: int) -> None:
        self.calls["switch"] += 1
        super().switch(color, epoch)
        self.weight_now = 0

    def stop_idle(self, color: Color, epoch: int) -> None:
        self.calls["stop_idle"] += 1
        super().stop_idle(color, epoch)

    def weights(self) -> TrafficWeights:
        return SleepyWeights(self)


class InstantMetrics:
    """A metrics source that answers at once: the canary's error rate is `canary_rate`."""

    def __init__(self) -> None:
        self.canary_rate = 0.0
        self.canary: dict[str, Color] = {}

    def sample(self, app: str, env: str, color: Color, window: float) -> dict[str, float]:
        rate = self.canary_rate if color == self.canary.get(app) else 0.0
        return {"requests": 100.0, "responses": 100.0, "error_rate": rate}


@contextlib.contextmanager
def canary_ctx(
    apps: int, step: float, database_url: str | None
) -> Iterator[tuple[Any, dict[str, WeightedTarget], InstantMetrics]]:
    toml = bench_toml(apps, 1).replace(
        "[environments.staging]\n", '[environments.staging]\nstrategy = "canary"\n'
    )
    targets: dict[str, WeightedTarget] = {}

    def factory(app: str, env: str, adapter: str, settings: Any) -> WeightedTarget:
        return targets.setdefault(app, WeightedTarget(step))

    metrics = InstantMetrics()
    with engine_ctx(toml + CANARY, database_url, factory, metrics=metrics) as ctx:
        yield ctx, targets, metrics


def _run(ctx: Any, version: str) -> tuple[Sample, Any]:
    from shipdeck.core.services.plans import create_plan, get_plan
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.services.runs import execute_run, start_run

    names = sorted(ctx.config.apps)
    for a in names:
        create_release(ctx, a, version)
    plan = create_plan(ctx, "staging", [f"{a}@{version}" for a in names])
    ticket = start_run(ctx, plan.id)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = execute_run(ctx, ticket)
    sample = Sample(time.perf_counter() - t0, time.process_time() - cpu0)
    return sample, (result, get_plan(ctx, plan.id).steps)


def _analysis_spans(steps: Any) -> list[float]:
    """Seconds from each `analysis at N%` row started to the app's next canary row (its
    outcome, which carries the verdict as its detail)."""
    started: dict[str, datetime] = {}
    spans = []
    for s in steps:
        if s.step != "canary":
            continue
        if s.state == "started" and s.detail.startswith("analysis at"):
            started[s.app] = s.at
        elif s.state != "started" and s.app in started:
            spans.append((s.at - started.pop(s.app)).total_seconds())
    return spans


def _rollback_span(steps: Any) -> float:
    """Seconds from the busiest app's first weight set to its rollback recorded."""
    first: dict[str, datetime] = {}
    spans = []
    for s in steps:
        if s.step == "canary" and s.state == "done" and s.detail.startswith("weight "):
            first.setdefault(s.app, s.at)
        if s.step == "rollback" and s.state == "done" and s.app in first:
            spans.append((s.at - first[s.app]).total_seconds())
    return max(spans)


def measure(apps: int, step: float, runs: int, database_url: str | None) -> list[Metric]:
    overhead: list[Sample] = []
    critical: list[Sample] = []
    analysis: list[Sample] = []
    rollback: list[Sample] = []
    with canary_ctx(apps, step, database_url) as (ctx, targets, metrics):
        _run(ctx, "0.0")  # the first deployment switches at once: nothing to compare with
        for run in range(1, runs + 1):
            for t in targets.values():
                t.calls.clear()
            sample, (result, steps) = _run(ctx, f"{run}.0")
            if result.state != "succeeded":
                raise RuntimeError(f"bench canary run {run} {result.state}: {result.result}")
            calls = max(sum(t.calls.values()) for t in targets.values())
            path = calls * step + len(WEIGHTS) * (PAUSE + INTERVAL)
            overhead.append(sample)
            critical.append(Sample(path, path))
            analysis += [Sample(span, span) for span in _analysis_spans(steps)]
            # the same plan shape with a canary failing 20% of its requests: rolled back
            metrics.canary_rate = 0.2
            metrics.canary = {
                a: "green" if t.live == "blue" else "blue" for a, t in targets.items()
            }
            _, (failed, steps) = _run(ctx, f"{run}.1")
            metrics.canary_rate = 0.0
            if failed.state != "rolled_back":
                raise RuntimeError(f"bench failing canary {run} {failed.state}: {failed.result}")
            span = _rollback_span(steps)
            rollback.append(Sample(span, span))
    store = "postgresql" if database_url else "sqlite"
    window = [Sample(INTERVAL, INTERVAL)]
    return [
        Metric(
            f"canary.overhead.{store}",
            f"a {apps}-app canary (weights {WEIGHTS}, {PAUSE:g}s pauses, {INTERVAL:g}s analyses), "
            f"{step * 1000:.0f} ms per target call",
            "its critical path: the busiest app's target calls + configured pauses and windows",
            overhead,
            critical,
            ("<=", 1.10),
        ),
        Metric(
            f"canary.analysis.{store}",
            "an analysis step: started -> verdict recorded (journal times)",
            f"its window: interval x count = {INTERVAL:g}s",
            analysis,
            window,
            ("<=", 1.10),
        ),
        Metric(
            f"canary.rollback.{store}",
            "a canary failing 20% of requests: first weight set -> rollback recorded",
            f"one analysis interval ({INTERVAL:g}s)",
            rollback,
            window,
            ("<=", 1.5),
        ),
    ]


def metrics(opts: Options) -> list[Metric]:
    return measure(
        5 if opts.quick else 20, 0.02 if opts.quick else 0.05, opts.runs, opts.database_url
    )
