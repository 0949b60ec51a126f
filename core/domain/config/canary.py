"""`strategy` and `[environments.E.canary]` / `[apps.A.targets.E.canary]`: the canary's steps
and the analysis run at each weight (core.domain.canary decides with them).

    strategy = "canary"
    [environments.prod.canary]
    steps = [{ set_weight = 5 }, { pause = "5m" }, { set_weight = 25 }, { pause = {} },
             { set_weight = 50 }, { pause = "5m" }]
    [environments.prod.canary.analysis.error_rate]
    success = "error_rate < 0.01"
    interval = "1m"
    count = 3
    failure_limit = 0
    prometheus = { address = "http://127.0.0.1:9090", query = "..." }   # else the target's counters
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipdeck.core.domain.canary import (
    CONSECUTIVE_ERROR_LIMIT,
    CanarySpec,
    Metric,
    Pause,
    SetWeight,
    Step,
    parse_condition,
)
from shipdeck.core.domain.config.collector import Collector, join, typename
from shipdeck.core.domain.promql import PrometheusQuery, address_problem, query_problems
from shipdeck.core.domain.windows import parse_duration

_METRIC_KEYS = {
    "success",
    "interval",
    "count",
    "failure_limit",
    "inconclusive_limit",
    "consecutive_error_limit",
    "prometheus",
}


def parse_canary(c: Collector, raw: Any, path: str) -> CanarySpec | None:
    """The canary table, or None (with every problem recorded) when it is not usable."""
    errors = len(c.errors)
    t = c.table(raw, path)
    c.keys(t, path, {"steps", "analysis"})
    steps = _steps(c, t, path)
    atable = c.table(t.get("analysis"), join(path, "analysis"))
    metrics = tuple(
        m
        for name, mraw in atable.items()
        if (m := _metric(c, name, mraw, join(join(path, "analysis"), name))) is not None
    )
    return None if len(c.errors) > errors else CanarySpec(steps, metrics)


def _steps(c: Collector, t: Mapping[str, Any], path: str) -> tuple[Step, ...]:
    spath = join(path, "steps")
    raw = c.get(t, path, "steps", list, required=True) or []
    steps: list[Step] = []
    last = 0
    for i, entry in enumerate(raw):
        ipath = f"{spath}[{i}]"
        step = _step(c, entry, ipath)
        if step is None:
            continue
        if last >= 100:
            c.err(ipath, "nothing can follow set_weight = 100 (it is the promote)")
        if isinstance(step, SetWeight):
            if step.percent <= last:
                c.err(f"{ipath}.set_weight", f"must be above the previous weight {last}")
            last = step.percent
        steps.append(step)
    if raw and not any(isinstance(s, SetWeight) for s in steps):
        c.err(spath, "needs at least one { set_weight = N }")
    elif "steps" in t and not raw:
        c.err(spath, 'must list steps, e.g. [{ set_weight = 5 }, { pause = "5m" }]')
    return tuple(steps)


def _step(c: Collector, entry: Any, ipath: str) -> Step | None:
    """`{ set_weight = N }`, `{ pause = "5m" }` or `{ pause = {} }` (until promoted)."""
    if not isinstance(entry, dict) or len(entry) != 1:
        shown = typename(entry) if not isinstance(entry, dict) else f"{len(entry)} keys"
        c.err(ipath, f"must be a table with one key, set_weight or pause, not {shown}")
        return None
    c.keys(entry, ipath, {"set_weight", "pause"})
    if "set_weight" in entry:
        percent = c.get(entry, ipath, "set_weight", int)
        if percent is None:
            return None
        if not 1 <= percent <= 100:
            c.err(f"{ipath}.set_weight", f"must be a percentage from 1 to 100, not {percent}")
            return None
        return SetWeight(percent)
    if "pause" not in entry:
        return None
    value = entry["pause"]
    if value == {}:
        return Pause(None)
    seconds = _seconds(c, value, f"{ipath}.pause", 'a duration like "5m", or {} (until promoted)')
    return None if seconds is None else Pause(seconds)


def _seconds(c: Collector, value: Any, path: str, what: str) -> float | None:
    if not isinstance(value, str):
        c.err(path, f"must be {what}, not {typename(value)}")
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as exc:
        c.err(path, str(exc))
        return None
    if seconds <= 0:
        c.err(path, f"must be longer than 0s, not '{value}'")
        return None
    return seconds


def _metric(c: Collector, name: str, raw: Any, path: str) -> Metric | None:
    errors = len(c.errors)
    m = c.table(raw, path)
    c.keys(m, path, _METRIC_KEYS)
    text = c.get(m, path, "success", str, required=True)
    condition = None
    if text is not None:
        try:
            condition = parse_condition(text)
        except ValueError as exc:
            c.err(join(path, "success"), str(exc))
        else:
            if condition.metric != name:
                c.err(
                    join(path, "success"),
                    f"compares '{condition.metric}', not this metric '{name}'",
                )
    interval = None
    if "interval" in m:
        interval = _seconds(c, m["interval"], join(path, "interval"), 'a duration like "1m"')
    else:
        c.err(join(path, "interval"), "required key is missing")
    count = _limit(c, m, path, "count", 1, least=1)
    failure = _limit(c, m, path, "failure_limit", 0)
    inconclusive = _limit(c, m, path, "inconclusive_limit", 0)
    in_a_row = _limit(c, m, path, "consecutive_error_limit", CONSECUTIVE_ERROR_LIMIT)
    query = _prometheus(c, m["prometheus"], join(path, "prometheus")) if "prometheus" in m else None
    if len(c.errors) > errors or condition is None or interval is None:
        return None
    return Metric(name, condition, interval, count, failure, inconclusive, in_a_row, query)


def _prometheus(c: Collector, raw: Any, path: str) -> PrometheusQuery | None:
    """`prometheus = { address = URL, query = TEMPLATE }` (core.domain.promql checks both)."""
    t = c.table(raw, path)
    c.keys(t, path, {"address", "query"})
    address = c.get(t, path, "address", str, required=True)
    query = c.get(t, path, "query", str, required=True)
    if address is not None and (problem := address_problem(address)) is not None:
        c.err(join(path, "address"), problem)
    for problem in query_problems(query) if query is not None else ():
        c.err(join(path, "query"), problem)
    if address is None or query is None:
        return None
    return PrometheusQuery(address.rstrip("/"), query)


def _limit(
    c: Collector, m: Mapping[str, Any], path: str, key: str, default: int, least: int = 0
) -> int:
    value = c.get(m, path, key, int, default)
    if value < least:
        c.err(join(path, key), f"must be {least} or more, not {value}")
    return int(value)
