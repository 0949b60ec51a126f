"""`[apps.A.targets.E.eval]`: the evaluation gate an app passes on its staged color in one
environment before traffic switches to it (core.domain.evaluation judges it)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from shipdeck.core.domain.argv_template import placeholders
from shipdeck.core.domain.config.collector import Collector, join, seconds_at, typename
from shipdeck.core.domain.evaluation import EVAL_PLACEHOLDERS, EVAL_TIMEOUT, EvalGate, MetricRule

# Target adapters that can name a URL for one color (Target.color_endpoint): an eval gate
# elsewhere could never run, so `config check` says so rather than the first run.
COLOR_URL_ADAPTERS = ("local", "nginx")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")


def parse_eval(c: Collector, raw: Any, path: str, adapter: str) -> EvalGate | None:
    """The gate, or None (with every problem recorded) when the table is not usable."""
    t = c.table(raw, path)
    c.keys(t, path, {"command", "timeout", "metrics"})
    if adapter not in COLOR_URL_ADAPTERS:
        c.err(
            path,
            f"the '{adapter}' target adapter has no URL for one color, so nothing can be evaluated "
            f"before the switch (only {' and '.join(COLOR_URL_ADAPTERS)} targets can)",
        )
    command = _command(c, t, path)
    timeout = seconds_at(c, t, path, "timeout")
    metrics = _metrics(c, t.get("metrics"), f"{path}.metrics")
    if command is None or not metrics:
        return None
    return EvalGate(command, metrics, EVAL_TIMEOUT if timeout is None else timeout)


def _command(c: Collector, t: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    if "command" not in t:
        c.err(join(path, "command"), "required key is missing")
        return None
    cpath = join(path, "command")
    errors = len(c.errors)
    command = c.strings(t, path, "command")
    if len(c.errors) > errors:
        return None
    if not command:
        c.err(cpath, "must name a program (a non-empty argv array)")
        return None
    try:
        used = placeholders(command)
    except ValueError as exc:
        c.err(cpath, str(exc))
        return None
    for name in sorted(used - EVAL_PLACEHOLDERS):
        known = ", ".join("{" + p + "}" for p in sorted(EVAL_PLACEHOLDERS))
        c.err(cpath, f"unknown placeholder {{{name}}} (known: {known})")
    return command if used <= EVAL_PLACEHOLDERS else None


def _metrics(c: Collector, raw: Any, path: str) -> tuple[MetricRule, ...]:
    if raw is None:
        c.err(path, "required: at least one metric, e.g. accuracy = { min = 0.8 }")
        return ()
    table = c.table(raw, path)
    if isinstance(raw, dict) and not table:
        c.err(path, "must name at least one metric")
    rules = [_metric(c, name, value, join(path, name)) for name, value in table.items()]
    return tuple(r for r in rules if r is not None)


def _metric(c: Collector, name: str, raw: Any, path: str) -> MetricRule | None:
    errors = len(c.errors)
    m = c.table(raw, path)
    c.keys(m, path, {"min", "max", "max_regression"})
    low, high = _bound(c, m, path, "min"), _bound(c, m, path, "max")
    regression = _percent(c, m, path)
    if isinstance(raw, dict) and not {"min", "max", "max_regression"} & set(m):
        c.err(path, "needs min, max or max_regression")
    if low is not None and high is not None:
        if low > high:
            c.err(path, f"min {low:g} is above max {high:g}")
        if regression is not None:
            c.err(
                join(path, "max_regression"),
                "needs one direction: min (higher is better) or max (lower is better), not both",
            )
    if len(c.errors) > errors:
        return None
    return MetricRule(name, low, high, regression)


def _bound(c: Collector, m: Mapping[str, Any], path: str, key: str) -> float | None:
    value = c.get(m, path, key, (int, float))
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value):
        c.err(join(path, key), f"must be a finite number, not {value!r}")
        return None
    return float(value)


def _percent(c: Collector, m: Mapping[str, Any], path: str) -> float | None:
    """`max_regression = "5%"`: a percentage of the live release's value, written with `%`."""
    if "max_regression" not in m:
        return None
    value = m["max_regression"]
    found = _PERCENT.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        shown = repr(value) if isinstance(value, str) else typename(value)
        c.err(join(path, "max_regression"), f'must be a percentage like "5%", not {shown}')
        return None
    return float(found.group(1))
