"""A canary on the real local target, end to end, on SQLite and PostgreSQL: traffic through the
front port the whole run, the proxy's own counters as the analysis' metrics. A healthy canary
walks 10 -> 50 -> 100 and promotes with no failed request; one whose release fails 5% of its
requests is rolled back at its first weight, its measured error rate kept as evidence, and no
request that reached the stable color failed."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.plans import StepView, create_plan
from shipdeck.core.services.runs import RunResult, run_plan, wait_run
from tests.integration.shipping import (
    front_port,
    get_version,
    live,
    release_all,
    shipping,
    until_step,
)
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

CANARY = """
[environments.staging.canary]
steps = [{ set_weight = 10 }, { set_weight = 50 }, { set_weight = 100 }]
[environments.staging.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "2s"
"""
PAUSED = """
[environments.staging.canary]
steps = [{ set_weight = 10 }, { pause = {} }, { set_weight = 100 }]
"""
STRATEGY = {"staging": 'strategy = "canary"'}
RATE = 250.0  # requests a second through the front port: 25 a second reach a 10% canary


class Traffic:
    """GET / on the front port RATE times a second, one connection each, until stopped:
    (status, X-Version) counts, and the requests that got no answer at all."""

    def __init__(self, port: int, workers: int = 4) -> None:
        self.port = port
        self.seen: Counter[tuple[int, str]] = Counter()
        self.unanswered: list[str] = []
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]
        self._period = workers / RATE

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                outcome: tuple[int, str] | str = (resp.status, resp.getheader("X-Version", ""))
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            finally:
                conn.close()
            with self._guard:
                if isinstance(outcome, str):
                    self.unanswered.append(outcome)
                else:
                    self.seen[outcome] += 1
            next_at += self._period  # pacing the load, not waiting for a condition
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def failed(self, version: str) -> int:
        return sum(n for (status, v), n in self.seen.items() if v == version and status != 200)

    def served(self, version: str) -> int:
        return sum(n for (_, v), n in self.seen.items() if v == version)

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        for t in self._threads:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(30)


def _first_release(ws: WorkspaceFixture) -> None:
    """web 1.0.0 live in staging (a first deployment switches at once)."""
    alice = live(ws)
    release_all(alice, "1.0.0", apps=["web"])
    assert run_plan(alice, create_plan(alice, "staging", ["web"]).id).ok


def _run(ws: WorkspaceFixture, plan_id: str) -> RunResult:
    """Run the plan in a detached runner (its own process, as `plan run` does) and follow it:
    a canary that found no traffic to judge pauses for a person, which must fail the test (a
    TimedOut), not hang it."""
    assert cli(ws, "plan", "run", plan_id).returncode == 0
    return wait_run(live(ws), plan_id, timeout=180)


def _canary_rows(steps: Sequence[StepView]) -> list[tuple[str, str]]:
    return [(s.state, s.detail) for s in steps if s.step == "canary"]


def assert_walked(result: RunResult, weights: bool = True) -> None:
    """The run succeeded through weights 10% and 50%, each analysis passing."""
    assert result.state == "succeeded", result.result
    done = [d for st, d in _canary_rows(result.steps) if st == "done"]
    if weights:
        assert [d for d in done if d.startswith("weight")] == ["weight 10%", "weight 50%"]
    assert [d.split(":")[0] for d in done if d.startswith("analysis")] == [
        "analysis at 10% passed",
        "analysis at 50% passed",
    ]


def test_a_healthy_canary_promotes_with_no_failed_request(ws: WorkspaceFixture) -> None:
    with shipping(ws, env_extra=STRATEGY, top=CANARY):
        _first_release(ws)
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web@2.0.0"])
        port = front_port(ws, "web", "staging")

        with Traffic(port).running() as traffic:
            result = _run(ws, plan.id)

        assert_walked(result)
        assert get_version(port) == "2.0.0"
        assert traffic.unanswered == [] and traffic.failed("1.0.0") == traffic.failed("2.0.0") == 0
        assert traffic.served("2.0.0") > 0 and traffic.served("1.0.0") > 0


def test_a_canary_failing_5_percent_is_rolled_back_at_its_first_weight(
    ws: WorkspaceFixture,
) -> None:
    with shipping(ws, env_extra=STRATEGY, top=CANARY):
        _first_release(ws)
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"], demo_error_rate=0.05)
        plan = create_plan(alice, "staging", ["web@2.0.0"])
        port = front_port(ws, "web", "staging")

        with Traffic(port).running() as traffic:
            result = _run(ws, plan.id)

        assert result.state == "rolled_back", result.result
        assert "web failed at canary: analysis at 10% failed: error_rate: 1 of 1" in result.result
        # One measurement, one interval after the first weight, then straight back to 0.
        rows = _canary_rows(result.steps)
        failure = "analysis at 10% failed: error_rate: 1 of 1 measurements failed"
        assert [(st, d.split(" '")[0]) for st, d in rows] == [
            ("started", "weight 10%"),
            ("done", "weight 10%"),
            ("started", "analysis at 10%"),
            ("failed", failure),
            ("started", "weight 0%"),
            ("done", f"weight 0% ({failure}"),
        ]
        events = audit_log.list_events(alice, AuditFilter(plan=plan.id), limit=1000, ascending=True)
        failed = next(e for e in events if e.kind == "run.canary.failed")
        measured = failed.payload["metrics"]["error_rate"]["measurements"]
        assert len(measured) == 1 and measured[0]["outcome"] == "failed"
        assert measured[0]["canary"] >= 0.01 and measured[0]["stable"] == 0.0
        intents = [e.payload["weight"] for e in events if e.kind == "run.canary.intent"]
        assert intents == [10, 10, 0]  # the weight, its analysis, the way back
        settings = ws.base.config.apps["web"].targets["staging"].settings
        weights = ws.base.targets("web", "staging", "local", settings).weights()
        assert weights is not None and weights.weight() == 0
        assert get_version(port) == "1.0.0"
        # The stable path lost nothing: every request that reached 1.0.0 succeeded.
        assert traffic.unanswered == [] and traffic.failed("1.0.0") == 0
        assert traffic.served("1.0.0") > 0 and traffic.failed("2.0.0") > 0


def test_status_and_plan_show_say_the_weight_while_a_canary_runs(ws: WorkspaceFixture) -> None:
    with shipping(ws, env_extra=STRATEGY, top=PAUSED):
        _first_release(ws)
        alice = live(ws)
        release_all(alice, "2.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web@2.0.0"])
        assert cli(ws, "plan", "run", plan.id).returncode == 0  # a detached runner
        until_step(alice, plan.id, "canary", "started", detail="paused at 10%")

        cell = _web_cell(ws)
        shown = json.loads(cli(ws, "-o", "json", "plan", "show", plan.id).stdout)["plan"]
        text = cli(ws, "plan", "show", plan.id).stdout
        assert cell["canary_weight"] == 10 and "canary at 10%" in cli(ws, "status").stdout
        assert shown["canary_weights"] == {"web": 10} and "  canary   web at 10%\n" in text

        assert cli(ws, "plan", "promote", plan.id).returncode == 0
        assert wait_run(alice, plan.id, timeout=120).state == "succeeded"
        assert _web_cell(ws)["canary_weight"] is None
        shown = json.loads(cli(ws, "-o", "json", "plan", "show", plan.id).stdout)["plan"]
        assert (
            shown["canary_weights"] == {}
            and get_version(front_port(ws, "web", "staging")) == "2.0.0"
        )


def _web_cell(ws: WorkspaceFixture) -> dict[str, object]:
    doc = json.loads(cli(ws, "-o", "json", "status", "--app", "web", "--env", "staging").stdout)
    return doc["apps"][0]["environments"][0]
