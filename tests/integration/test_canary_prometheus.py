"""A canary on the real local target whose analysis asks a REAL Prometheus, which scrapes both
colors' demo apps (GET /metrics) every second: a healthy canary promotes; one whose release
fails 5% of its requests is rolled back at its first weight, the error rates Prometheus
measured for both colors kept as evidence."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.plans import create_plan
from tests.integration.shipping import front_port, get_version, live, release_all, shipping
from tests.integration.test_canary_local import (
    STRATEGY,
    Traffic,
    _first_release,
    _run,
    assert_walked,
)
from tests.support.moto_server import free_port
from tests.support.prometheus import prometheus_server, require_prometheus, scraped
from tests.support.workspace import WorkspaceFixture

ERROR_RATE = (
    'sum(rate(demo_responses_total{app="{app}",color="{color}",code=~"5.."}[{window}])) / '
    'sum(rate(demo_responses_total{app="{app}",color="{color}"}[{window}]))'
)
CANARY = """
[environments.staging.canary]
steps = [{{ set_weight = 10 }}, {{ set_weight = 50 }}, {{ set_weight = 100 }}]
[environments.staging.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "5s"
prometheus = {{ address = "{address}", query = '{query}' }}
"""

# The database plays no part in what is tested here: SQLite only, to spare the machine two
# minutes of real traffic (test_canary_local runs the same walk on both databases).
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@contextmanager
def watched(ws: WorkspaceFixture, tmp_path: Path) -> Iterator[str]:
    """The local-target workspace, its staging canary measured by a Prometheus that scrapes
    web's blue and green ports; yields that Prometheus' URL once it has scraped both."""
    binary = require_prometheus()
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    top = CANARY.format(address=address, query=ERROR_RATE)
    with shipping(ws, env_extra=STRATEGY, top=top):
        settings = ws.base.config.apps["web"].targets["staging"].settings
        colors = [int(settings["blue_port"]), int(settings["green_port"])]
        with prometheus_server(binary, tmp_path / "prometheus", colors, port) as url:
            _first_release(ws)
            scraped(url, 'demo_responses_total{app="web",version="1.0.0"}')
            yield url


def _instant(url: str, query: str) -> list[dict[str, object]]:
    asked = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(asked, timeout=10) as resp:
        result: list[dict[str, object]] = json.load(resp)["data"]["result"]
    return result


def test_a_healthy_canary_measured_by_prometheus_promotes(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    with watched(ws, tmp_path) as url:
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web@2.0.0"])
        port = front_port(ws, "web", "staging")

        with Traffic(port).running() as traffic:
            result = _run(ws, plan.id)

        assert_walked(result, weights=False)
        assert get_version(port) == "2.0.0" and traffic.failed("2.0.0") == 0
        events = audit_log.list_events(alice, AuditFilter(plan=plan.id), limit=1000, ascending=True)
        measured = [
            m
            for e in events
            if e.kind == "run.canary" and "metrics" in e.payload
            for m in e.payload["metrics"]["error_rate"]["measurements"]
        ]
        assert [(m["outcome"], m["canary"], m["stable"]) for m in measured] == [
            ("successful", 0.0, 0.0)
        ] * 2
        # Prometheus saw the canary's traffic, by the labels the demo app exports.
        assert _instant(url, 'demo_responses_total{app="web",version="2.0.0",code="200"} > 0')


def test_a_canary_failing_5_percent_is_rolled_back_on_prometheus_evidence(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    with watched(ws, tmp_path):
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"], demo_error_rate=0.05)
        plan = create_plan(alice, "staging", ["web@2.0.0"])
        port = front_port(ws, "web", "staging")

        with Traffic(port).running() as traffic:
            result = _run(ws, plan.id)

        assert result.state == "rolled_back", result.result
        assert "web failed at canary: analysis at 10% failed: error_rate: 1 of 1" in result.result
        events = audit_log.list_events(alice, AuditFilter(plan=plan.id), limit=1000, ascending=True)
        failed = next(e for e in events if e.kind == "run.canary.failed")
        (measured,) = failed.payload["metrics"]["error_rate"]["measurements"]
        assert measured["outcome"] == "failed"
        assert 0.01 <= measured["canary"] <= 0.2 and measured["stable"] == 0.0
        assert get_version(port) == "1.0.0"
        assert traffic.failed("1.0.0") == 0 and traffic.failed("2.0.0") > 0
