"""The eval gate on real `local` targets: a real evaluator process asks the staged color (by its
own URL, before any traffic goes there) which version it serves and prints metrics the test
chose per version. A passing eval switches; one 10% worse than the live release's recorded
value, with 5% allowed, blocks the switch and rolls back, with the evidence in the audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipdeck.core.services.audit_log import AuditFilter, Event, list_events
from shipdeck.core.services.context import Context
from shipdeck.core.services.runs import deploy
from tests.integration.shipping import front_port, get_version, live, release_all, shipping
from tests.support.cli import cli
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

APP, ENV = "model-server", "staging"

# argv: URL VERSION METRICS_FILE LOG_FILE. GETs URL/version, logs what it reached, and prints
# the metrics METRICS_FILE holds for the version that color really serves.
EVALUATOR = """\
import http.client, json, sys
from urllib.parse import urlsplit
url, version, metrics_file, log_file = sys.argv[1:]
parts = urlsplit(url)
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
conn.request("GET", "/version")
served = conn.getresponse().read().decode()
with open(log_file, "a") as log:
    log.write(json.dumps({"url": url, "version": version, "served": served}) + "\\n")
print(json.dumps(json.load(open(metrics_file))[served]))
"""


def gated_toml(tmp: Path) -> str:
    (tmp / "evaluator.py").write_text(EVALUATOR)
    argv = [sys.executable, str(tmp / "evaluator.py"), "{url}", "{version}"]
    argv += [str(tmp / "metrics.json"), str(tmp / "eval.log")]
    return BASIC_TOML + (
        f"\n[apps.{APP}.targets.{ENV}.eval]\ncommand = {json.dumps(argv)}\ntimeout = 60\n"
        'metrics.accuracy = { min = 0.8, max_regression = "5%" }\n'
        'metrics.latency_ms = { max = 500, max_regression = "50%" }\n'
    )


def evals(ctx: Context, kind: str) -> list[Event]:
    return list_events(ctx, AuditFilter(kind=kind, app=APP, env=ENV), ascending=True)


def calls(tmp: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (tmp / "eval.log").read_text().splitlines()]


def test_a_passing_eval_switches_and_a_regression_blocks_the_switch(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "1.0.0": {"accuracy": 0.9, "latency_ms": 100},
                "1.1.0": {"accuracy": 0.87, "latency_ms": 120},  # 3.3% less accurate: passes
                "1.2.0": {"accuracy": 0.783, "latency_ms": 90},  # 10% below 1.1.0's 0.87
            }
        )
    )
    with shipping(ws, base=gated_toml(tmp_path)):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=(APP,))
        release_all(alice, "1.1.0", apps=(APP,))
        release_all(alice, "1.2.0", apps=(APP,))
        target = ws.base.config.apps[APP].targets[ENV].settings
        port = front_port(ws, APP, ENV)

        first = deploy(alice, APP, "1.0.0", ENV)
        assert first.state == "succeeded", first.result
        assert [s.state for s in first.steps if s.step == "eval"] == ["started", "done"]
        passed = evals(alice, "run.eval")
        assert len(passed) == 1 and passed[0].payload["verdict"] == "passed"
        assert passed[0].payload["baseline"] is None  # nothing was live before
        assert passed[0].payload["metrics"] == {"accuracy": 0.9, "latency_ms": 100}
        # The evaluator reached the staged color itself (not the front port) and it served 1.0.0.
        to_color = passed[0].payload["color"]
        assert calls(tmp_path) == [
            {
                "url": f"http://127.0.0.1:{target[f'{to_color}_port']}",
                "version": "1.0.0",
                "served": "1.0.0",
            }
        ]

        second = deploy(alice, APP, "1.1.0", ENV)
        assert second.state == "succeeded", second.result
        assert get_version(port) == "1.1.0"
        latest = evals(alice, "run.eval")[-1].payload
        assert latest["baseline"]["seq"] == passed[0].seq
        assert latest["baseline"]["metrics"]["accuracy"] == 0.9

        ran = cli(ws, "-o", "json", "deploy", APP, "1.2.0", "--env", ENV, "--wait")
        assert ran.returncode == 5, ran.stdout + ran.stderr  # failed and rolled back
        assert get_version(port) == "1.1.0"  # nothing switched

        [failed] = evals(alice, "run.eval.failed")
        body = failed.payload
        assert body["verdict"] == "failed" and body["version"] == "1.2.0"
        assert body["metrics"] == {"accuracy": 0.783, "latency_ms": 90}
        assert body["baseline"]["version"] == "1.1.0"
        assert body["baseline"]["metrics"] == {"accuracy": 0.87, "latency_ms": 120}
        assert body["thresholds"]["accuracy"] == {"min": 0.8, "max_regression": "5%"}
        assert "accuracy 0.783 is 10.0% worse than 0.87" in body["error"]
        [intent] = [e for e in evals(alice, "run.eval.intent") if e.seq == body["intent_seq"]]
        assert intent.seq < failed.seq and intent.payload["version"] == "1.2.0"

        plan = failed.plan
        assert plan is not None
        switched = list_events(alice, AuditFilter(kind="app.switched", plan=plan))
        assert switched == []
        shown = cli(ws, "-o", "json", "plan", "show", plan)
        doc = json.loads(shown.stdout)["plan"]
        assert doc["state"] == "rolled_back"
        eval_rows = [s for s in doc["steps"] if s["step"] == "eval"]
        assert [s["state"] for s in eval_rows] == ["started", "failed"]
        # The evaluator GOT the version from the idle color while 1.1.0 stayed live.
        last = calls(tmp_path)[-1]
        assert last["served"] == "1.2.0" and last["url"].endswith(
            str(target[f"{body['color']}_port"])
        )


def test_loosening_a_gate_after_the_approval_voids_it(ws: WorkspaceFixture, tmp_path: Path) -> None:
    """The gate is part of what approvers sign: a plan approved under `min = 0.8` does not run
    under `min = 0.5` on the strength of that approval. Apps without a gate are unaffected."""
    from shipdeck.core.services.plans import approve, create_plan, get_plan

    extra = {ENV: 'approvals = { required = 1, roles = ["approvers"] }'}
    with shipping(ws, base=gated_toml(tmp_path), env_extra=extra):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=[APP, "web"])
        gated = create_plan(alice, ENV, [APP])
        plain = create_plan(alice, ENV, ["web"])
        for plan in (gated, plain):
            approve(live(ws, "bob"), plan.id)
            assert get_plan(alice, plan.id).blockers == ()
        toml = (ws.root / "shipdeck.toml").read_text()
        ws.write_config(toml.replace("{ min = 0.8,", "{ min = 0.5,"))
        alice = live(ws)
        after = get_plan(alice, gated.id)
        assert after.digest != gated.digest
        assert {b.kind for b in after.blockers} >= {"stale_approval"}, after.blockers
        assert get_plan(alice, plain.id).blockers == ()  # its digest does not cover the gate
        blocked = cli(ws, "plan", "run", gated.id)
        assert blocked.returncode == 3 and "approval" in blocked.stderr
