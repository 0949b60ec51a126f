"""The eval gate's judgement (core.domain.evaluation) and its configuration
(`[apps.A.targets.E.eval]`): thresholds, regression percentages, missing baselines, values that
are not finite numbers, and every bad table refused by `config check` with exit 4 and its key
path."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from shipdeck.core.domain.config import parse_config
from shipdeck.core.domain.evaluation import (
    EvalGate,
    EvalOutputError,
    MetricRule,
    judge,
    read_metrics,
    worse_pct,
)
from tests.support.cli import shipdeck
from tests.support.workspace import BASIC_TOML

ACCURACY = MetricRule("accuracy", min=0.8, max_regression=5.0)
LATENCY = MetricRule("latency_ms", max=500, max_regression=10.0)
GATE = EvalGate(("eval", "{url}"), (ACCURACY, LATENCY))


def _one(rule: MetricRule, value: object, baseline: float | None = None) -> tuple[bool, str]:
    base = None if baseline is None else {rule.name: baseline}
    check = judge(EvalGate(("e",), (rule,)), {rule.name: value}, base, "1.4.0").checks[0]
    return check.ok, check.sentence


# --- thresholds --------------------------------------------------------------------------------


def test_values_within_thresholds_and_without_a_baseline_pass() -> None:
    verdict = judge(GATE, {"accuracy": 0.9, "latency_ms": 120, "extra": "ignored"}, None)
    assert verdict.ok
    assert verdict.measured() == {"accuracy": 0.9, "latency_ms": 120.0}
    assert "accuracy 0.9 (no baseline)" in verdict.summary()


def test_a_minimum_and_a_maximum_are_enforced() -> None:
    assert _one(ACCURACY, 0.79) == (False, "accuracy 0.79 is below the minimum 0.8")
    assert _one(LATENCY, 501) == (False, "latency_ms 501 is above the maximum 500")
    assert _one(ACCURACY, 0.8)[0] and _one(LATENCY, 500)[0]  # the bounds themselves pass


# --- regression against the live release's recorded value ---------------------------------------


def test_higher_is_better_regression_beyond_the_limit_fails() -> None:
    ok, sentence = _one(ACCURACY, 0.81, baseline=0.9)  # 10% worse, 5% allowed
    assert not ok
    assert sentence == (
        "accuracy 0.81 is 10.0% worse than 0.9 measured for the live release 1.4.0 "
        "(at most 5% allowed)"
    )


def test_lower_is_better_regression_counts_the_other_way() -> None:
    assert not _one(LATENCY, 111, baseline=100)[0]  # 11% slower, 10% allowed
    assert _one(LATENCY, 80, baseline=100) == (
        True,
        "latency_ms 80 (20.0% better than 100 for 1.4.0)",
    )
    assert worse_pct(LATENCY, 110, 100) == pytest.approx(10.0)
    assert worse_pct(ACCURACY, 0.99, 0.9) == pytest.approx(-10.0)


def test_exactly_the_allowed_regression_passes_despite_float_rounding() -> None:
    assert (0.9 - 0.855) / 0.9 * 100 > 5.0  # what plain float arithmetic would refuse
    assert _one(ACCURACY, 0.855, baseline=0.9)[0]


def test_from_a_zero_baseline_any_worsening_is_infinitely_worse() -> None:
    errors = MetricRule("errors", max=10, max_regression=50.0)
    ok, sentence = _one(errors, 1, baseline=0)
    assert not ok and "infinitely worse than 0" in sentence
    assert _one(errors, 0, baseline=0)[0]


def test_a_missing_baseline_metric_leaves_the_threshold_to_decide() -> None:
    verdict = judge(GATE, {"accuracy": 0.85, "latency_ms": 900}, {"accuracy": 0.86}, "1.4.0")
    accuracy, latency = verdict.checks
    assert accuracy.ok and accuracy.baseline == 0.86
    assert not latency.ok and latency.baseline is None and latency.worse_pct is None
    assert verdict.failures == ["latency_ms 900 is above the maximum 500"]


# --- what the evaluator printed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.9", '"0.9"'),
        (True, "true"),
        (None, "null"),
        ([0.9], "[0.9]"),
        (float("inf"), "Infinity"),
    ],
)
def test_values_that_are_not_finite_numbers_are_refused(value: object, shown: str) -> None:
    assert _one(ACCURACY, value) == (False, f"accuracy = {shown} is not a number")


def test_a_missing_metric_fails_the_gate() -> None:
    verdict = judge(GATE, {"accuracy": 0.9}, None)
    assert not verdict.ok
    assert verdict.failures == ["latency_ms is missing from the output"]


@pytest.mark.parametrize(
    ("stdout", "problem"),
    [
        ('{"accuracy": NaN}', "printed NaN, which is not a finite number"),
        ('{"accuracy": -Infinity}', "printed -Infinity, which is not a finite number"),
        ("accuracy=0.9", "the evaluator's output is not JSON"),
        ("", "the evaluator's output is not JSON"),
        ("[0.9]", "printed a JSON list, not an object of metrics"),
    ],
)
def test_output_that_is_not_a_json_object_is_refused(stdout: str, problem: str) -> None:
    with pytest.raises(EvalOutputError, match=problem.replace("(", r"\(")):
        read_metrics(stdout)


def test_a_huge_number_parses_to_infinity_and_is_refused() -> None:
    assert not judge(GATE, read_metrics('{"accuracy": 1e999, "latency_ms": 1}'), None).ok


# --- configuration -------------------------------------------------------------------------------

_GATE_PATH = "apps.model-server.targets.staging.eval"


def _with_gate(body: str, adapter: str = 'adapter = "local"\nport = 8600') -> str:
    return (
        BASIC_TOML + f"\n[apps.model-server.targets.staging]\n{adapter}\n\n[{_GATE_PATH}]\n{body}\n"
    )


_GOOD = 'command = ["eval", "{url}", "--version={version}"]\ntimeout = 20\n'


def test_a_gate_parses_to_its_rules() -> None:
    text = _with_gate(
        _GOOD + 'metrics.accuracy = { min = 0.8, max_regression = "5%" }\n'
        'metrics.latency_ms = { max = 500, max_regression = "12.5%" }'
    )
    gate = parse_config(tomllib.loads(text)).apps["model-server"].targets["staging"].eval
    assert gate == EvalGate(
        ("eval", "{url}", "--version={version}"),
        (ACCURACY, MetricRule("latency_ms", max=500, max_regression=12.5)),
        timeout=20.0,
    )
    assert gate.thresholds()["latency_ms"] == {"max": 500, "max_regression": "12.5%"}


BAD_GATES = [
    ("unknown key", _GOOD + "metric.accuracy = { min = 0.8 }", f"{_GATE_PATH}.metric: unknown key"),
    ("no metrics", _GOOD, f"{_GATE_PATH}.metrics: required: at least one metric"),
    (
        "no command",
        "metrics.accuracy = { min = 0.8 }",
        f"{_GATE_PATH}.command: required key is missing",
    ),
    (
        "unknown placeholder",
        'command = ["eval", "{host}"]\nmetrics.accuracy = { min = 0.8 }',
        f"{_GATE_PATH}.command: unknown placeholder {{host}}",
    ),
    (
        "percentage without %",
        _GOOD + 'metrics.accuracy = { max_regression = "5", min = 0.8 }',
        f"{_GATE_PATH}.metrics.accuracy.max_regression: must be a percentage like \"5%\", not '5'",
    ),
    (
        "percentage as a number",
        _GOOD + "metrics.accuracy = { max_regression = 5, min = 0.8 }",
        f'{_GATE_PATH}.metrics.accuracy.max_regression: must be a percentage like "5%", not an integer',
    ),
    (
        "negative percentage",
        _GOOD + 'metrics.accuracy = { max_regression = "-5%", min = 0.8 }',
        f"{_GATE_PATH}.metrics.accuracy.max_regression: must be a percentage",
    ),
    (
        "unknown metric key",
        _GOOD + "metrics.accuracy = { minimum = 0.8 }",
        f"{_GATE_PATH}.metrics.accuracy.minimum: unknown key",
    ),
    (
        "not a finite bound",
        _GOOD + "metrics.accuracy = { min = nan }",
        f"{_GATE_PATH}.metrics.accuracy.min: must be a finite number, not nan",
    ),
    (
        "two directions with a regression limit",
        _GOOD + 'metrics.accuracy = { min = 0.1, max = 0.9, max_regression = "5%" }',
        f"{_GATE_PATH}.metrics.accuracy.max_regression: needs one direction",
    ),
    (
        "min above max",
        _GOOD + "metrics.accuracy = { min = 0.9, max = 0.1 }",
        f"{_GATE_PATH}.metrics.accuracy: min 0.9 is above max 0.1",
    ),
    (
        "bad timeout",
        'command = ["eval"]\ntimeout = 0\nmetrics.accuracy = { min = 0.8 }',
        f"{_GATE_PATH}.timeout: must be a positive number of seconds, not 0",
    ),
]


@pytest.mark.parametrize(("name", "body", "problem"), BAD_GATES, ids=[b[0] for b in BAD_GATES])
def test_a_bad_gate_exits_4_naming_its_key_path(
    tmp_path: Path, name: str, body: str, problem: str
) -> None:
    path = tmp_path / "shipdeck.toml"
    path.write_text(_with_gate(body), encoding="utf-8")
    r = shipdeck("--workspace", str(tmp_path), "config", "check", env=dict(os.environ))
    assert r.code == 4, (name, r.out, r.err)
    assert "Traceback" not in r.err
    assert r.err_lines[0].startswith(f"{path}: {problem}"), r.err


def test_a_gate_on_a_target_without_color_urls_is_refused(tmp_path: Path) -> None:
    aws = (
        'adapter = "aws-elb"\nlistener_arn = "arn:l"\nblue_target_group_arn = "arn:b"\n'
        'green_target_group_arn = "arn:g"'
    )
    path = tmp_path / "shipdeck.toml"
    path.write_text(_with_gate(_GOOD + "metrics.accuracy = { min = 0.8 }", aws), encoding="utf-8")
    r = shipdeck("--workspace", str(tmp_path), "config", "check", env=dict(os.environ))
    assert r.code == 4
    assert r.err_lines == [
        f"{path}: {_GATE_PATH}: the 'aws-elb' target adapter has no URL for one color, so nothing "
        "can be evaluated before the switch (only local and nginx targets can)"
    ]


def test_a_checklist_item_may_set_its_command_timeout() -> None:
    text = BASIC_TOML.replace(
        'checklist = ["Release notes reviewed"]',
        'checklist = [{ id = "smoke", text = "Smoke", command = ["true"], timeout = 2.5 }, "Notes"]',
    )
    items = parse_config(tomllib.loads(text)).environments["prod"].checklist
    assert [(i.id, i.time_limit) for i in items] == [("smoke", 2.5), ("notes", 600.0)]


# --- the run view --------------------------------------------------------------------------------


def test_the_run_view_counts_the_eval_step_only_for_gated_apps() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from shipdeck.core.services.plans import StepView
    from shipdeck.tui.screens.run import fold

    at = datetime(2026, 11, 24, 12, tzinfo=UTC)
    items = [
        SimpleNamespace(app="gated", version="2", wave=0),
        SimpleNamespace(app="plain", version="2", wave=0),
    ]
    forward = ("stage", "health", "switch", "verify", "finalize")
    steps = [StepView(1, 1, 0, "plain", s, "done", "", at) for s in forward]
    steps += [StepView(2, 1, 0, "gated", s, "done", "", at) for s in ("stage", "health", "eval")]
    runs = fold(SimpleNamespace(items=items), steps)  # type: ignore[arg-type]
    assert runs["plain"].forward == forward and runs["plain"].status(True).plain == "✓ live"
    assert runs["gated"].forward == ("stage", "health", "eval", *forward[2:])
    assert runs["gated"].status(True).plain == "eval ✓"
