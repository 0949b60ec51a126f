"""A canary on a real nginx, end to end, on SQLite and PostgreSQL: 250 requests a second through
nginx the whole run, nginx's access log as the analysis' metrics. A healthy canary walks
10 -> 50 -> 100 and promotes with no failed request; one whose release fails 5% of its requests
is rolled back one analysis interval after its first weight, its measured error rate kept as
evidence, and no request that reached the stable color failed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import RunResult, run_plan, wait_run
from tests.integration.shipping import get_version, live, release_all, shipping
from tests.integration.test_canary_local import CANARY, STRATEGY, _canary_rows, assert_walked
from tests.support.cli import cli
from tests.support.load import LoadResult, run_load
from tests.support.moto_server import free_port
from tests.support.nginx import NginxFront, nginx_front, require_nginx
from tests.support.workspace import WorkspaceFixture

RATE = 250.0  # requests a second through nginx: 25 a second reach a 10% canary


@contextmanager
def nginx_shipping(ws: WorkspaceFixture, tmp_path: Path) -> Iterator[NginxFront]:
    """The shipping workspace with web's staging target on a private nginx (access log in
    shipdeck's format), web 1.0.0 live there (a first deployment switches at once)."""
    binary = require_nginx()
    blue, green = free_port(), free_port()
    with nginx_front(binary, tmp_path / "nginx", free_port(), blue) as front:
        settings = {"adapter": "nginx", **front.settings(blue, green)}
        table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        with shipping(ws, env_extra=STRATEGY, top=CANARY, targets={("web", "staging"): table}):
            alice = live(ws)
            release_all(alice, "1.0.0", apps=["web"])
            assert run_plan(alice, create_plan(alice, "staging", ["web"]).id).ok
            yield front


def _run_under_load(ws: WorkspaceFixture, front: NginxFront) -> tuple[RunResult, LoadResult]:
    """web 2.0.0's plan run by a detached runner (as `plan run` does), followed to its end while
    GET / goes through nginx RATE times a second."""
    alice = live(ws)
    plan = create_plan(alice, "staging", ["web@2.0.0"])
    ended: list[RunResult] = []

    def run() -> None:
        assert cli(ws, "plan", "run", plan.id).returncode == 0
        ended.append(wait_run(alice, plan.id, timeout=180))

    load = run_load(front.port, RATE, None, during=run, path="/")
    return ended[0], load


def test_a_healthy_canary_on_nginx_promotes_with_no_failed_request(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    with nginx_shipping(ws, tmp_path) as front:
        release_all(live(ws), "2.0.0", apps=["web"])
        result, load = _run_under_load(ws, front)

        assert_walked(result)
        assert load.failures == 0, load.errors
        assert load.served("2.0.0") > 0 and load.served("1.0.0") > 0
        assert get_version(front.port) == "2.0.0" and _weight(ws) == 0  # the split is over


def test_a_canary_on_nginx_failing_5_percent_is_rolled_back_one_interval_in(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    with nginx_shipping(ws, tmp_path) as front:
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"], demo_error_rate=0.05)
        result, load = _run_under_load(ws, front)

        assert result.state == "rolled_back", result.result
        assert "web failed at canary: analysis at 10% failed: error_rate: 1 of 1" in result.result
        failure = "analysis at 10% failed: error_rate: 1 of 1 measurements failed"
        assert [(st, d.split(" '")[0]) for st, d in _canary_rows(result.steps)] == [
            ("started", "weight 10%"),
            ("done", "weight 10%"),
            ("started", "analysis at 10%"),
            ("failed", failure),
            ("started", "weight 0%"),
            ("done", f"weight 0% ({failure}"),
        ]
        plan = result.plan_id
        events = audit_log.list_events(alice, AuditFilter(plan=plan), limit=1000, ascending=True)
        failed = next(e for e in events if e.kind == "run.canary.failed")
        measured = failed.payload["metrics"]["error_rate"]["measurements"]
        assert len(measured) == 1 and measured[0]["outcome"] == "failed"
        assert 0.01 <= measured[0]["canary"] <= 0.1 and measured[0]["stable"] == 0.0
        assert get_version(front.port) == "1.0.0" and _weight(ws) == 0
        # The stable path lost nothing: every request that reached 1.0.0 succeeded.
        assert load.unanswered == 0 and load.failed("1.0.0") == 0, load.errors
        assert load.served("1.0.0") > 0 and load.failed("2.0.0") > 0
        assert load.failures == load.failed("2.0.0")


def _weight(ws: WorkspaceFixture) -> int:
    """The canary's share as the target reads it from nginx's include file."""
    settings = ws.base.config.apps["web"].targets["staging"].settings
    weights = ws.base.targets("web", "staging", "nginx", settings).weights()
    assert weights is not None
    return weights.weight()
