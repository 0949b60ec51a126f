"""A canary metric that names a Prometheus query: what a good table gives the engine, every bad
one refused with exit 4 and its key path, the placeholders filled with values that cannot leave
their label string, and the plan digest covering the query (and only where there is one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipdeck.core.domain.promql import PrometheusQuery, duration, escape_string
from tests.support.cli import shipdeck
from tests.unit.test_canary_config import _config, _digest, _parse, _problems

QUERY = (
    'sum(rate(demo_responses_total{app="{app}",env="{env}",color="{color}",code=~"5.."}'
    '[{window}])) / sum(rate(demo_responses_total{app="{app}",color="{color}"}[{window}]))'
)
METRIC = """strategy = "canary"
[environments.prod.canary]
steps = [{{ set_weight = 5 }}]
[environments.prod.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "1m"
prometheus = {prom}
"""


def _with(prom: str) -> str:
    return _config(prod=METRIC.format(prom=prom))


def _table(address: str = "http://127.0.0.1:9090", query: str = QUERY) -> str:
    return "{ address = " + _q(address) + ", query = " + _q(query) + " }"


def _q(text: str) -> str:
    """A TOML literal string (no escapes inside: PromQL's quotes and backslashes stay as they are)."""
    return f"'{text}'"


def test_a_metric_keeps_its_query_and_the_others_the_target_counters() -> None:
    spec = _parse(_with(_table("http://prom.internal:9090/prometheus/"))).canary("web", "prod")
    assert spec is not None
    (metric,) = spec.metrics
    assert metric.prometheus == PrometheusQuery("http://prom.internal:9090/prometheus", QUERY)
    plain = _parse(_config()).canary("web", "prod")
    assert plain is not None and all(m.prometheus is None for m in plain.metrics)


def test_placeholders_are_filled_and_escaped_for_a_promql_string() -> None:
    query = PrometheusQuery("http://p", QUERY)
    rendered = query.render("web", "prod", "green", 60.0)
    assert rendered == (
        'sum(rate(demo_responses_total{app="web",env="prod",color="green",code=~"5.."}[60s])) '
        '/ sum(rate(demo_responses_total{app="web",color="green"}[60s]))'
    )
    # A hostile name stays inside its label value: the quote and backslash are escaped.
    hostile = 'x",color=~".*'
    shown = PrometheusQuery("http://p", 'up{app="{app}"}').render(hostile, "e", "blue", 5)
    assert shown == 'up{app="x\\",color=~\\".*"}'
    assert escape_string("a\\\"b'\n\x1b[31m") == "a\\\\\\\"b\\'\\n[31m"
    assert [duration(s) for s in (60.0, 2.0, 1.5, 0.25, 3600.0)] == [
        "60s", "2s", "1500ms", "250ms", "3600s",
    ]  # fmt: skip


PATH = "environments.prod.canary.analysis.error_rate.prometheus"
BAD: list[tuple[str, str, str]] = [
    ("ftp address", _table("ftp://127.0.0.1:9090"), f"{PATH}.address: must be an http:// or https:// URL, not 'ftp://127.0.0.1:9090'"),
    ("credentials", _table("http://u:secret@127.0.0.1:9090"), f"{PATH}.address: must not hold credentials"),
    ("no host", _table("http://:9090"), f"{PATH}.address: 'http://:9090' names no host"),
    ("query string", _table("http://p:9090/?x=1"), f"{PATH}.address: must be a base URL"),
    ("missing query", "{ address = 'http://p:9090' }", f"{PATH}.query: required key is missing"),
    ("missing address", "{ query = 'up' }", f"{PATH}.address: required key is missing"),
    ("empty query", _table(query=" "), f"{PATH}.query: must not be empty"),
    ("unknown placeholder", _table(query='up{job="{job}"}'), f"{PATH}.query: unknown placeholder {{job}} (known: {{app}} {{env}} {{color}} {{window}})"),
    ("unquoted placeholder", _table(query="{app}_requests_total"), f'{PATH}.query: placeholder {{app}} must stand inside a quoted string: "{{app}}"'),
    ("raw string", _table(query="up{app=`{app}`}"), f"{PATH}.query: placeholder {{app}} must stand inside a quoted string"),
    ("unknown key", "{ address = 'http://p', query = 'up', step = '1m' }", f"{PATH}.step: unknown key"),
    ("not a table", "'http://p'", f"{PATH}: must be a table, not a string"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "prom", "problem"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_query_table_exits_4_naming_its_key_path(name: str, prom: str, problem: str) -> None:
    problems = _problems(_with(prom))
    assert any(p.startswith(problem) for p in problems), problems
    assert not any("secret" in p for p in problems)


def test_config_check_names_the_key_path_with_exit_4(tmp_path: Path) -> None:
    (tmp_path / "shipdeck.toml").write_text(_with(_table("file:///etc/passwd")), encoding="utf-8")

    ran = shipdeck("--workspace", str(tmp_path), "config", "check")

    assert ran.code == 4
    assert ran.err_lines[0] == (
        f"{tmp_path / 'shipdeck.toml'}: {PATH}.address: must be an http:// or https:// URL, "
        "not 'file:///etc/passwd'"
    )
    assert "Traceback" not in ran.err


def test_the_digest_covers_the_query() -> None:
    with_query = _digest(_parse(_with(_table())))
    assert with_query != _digest(
        _parse(_config(prod=METRIC.replace("prometheus = {prom}\n", "").format()))
    )
    other_query = _table(query=QUERY.replace('code=~"5.."', 'code=~"4..|5.."'))
    assert _digest(_parse(_with(other_query))) != with_query
    assert _digest(_parse(_with(_table("http://other:9090")))) != with_query
    assert _digest(_parse(_with(_table()))) == with_query
