"""The blue/green engine announces every target call: `run.STEP.intent` commits with the step's
"started" journal row before the target is called, the outcome (`run.STEP`, `run.STEP.failed`)
names it with `intent_seq` in the "done"/"failed" row's transaction, and a runner killed in
between leaves an open intent that `audit verify` lists and `reconcile` closes with what it found
(`run.STEP.recovered`). SQLite and PostgreSQL (the `ws` fixture runs both)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter, Event
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import PlanView, create_plan, get_plan
from shipdeck.core.services.runs import run_plan
from shipdeck.core.storage import audit
from tests.fakes.targets import RecordingTargets
from tests.integration.shipping import (
    front_port,
    get_version,
    live,
    local_toml,
    release_all,
    shipping,
)
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

APPS = ("model-server", "chat-api")  # two waves: model-server, then chat-api
STEPS = ("stage", "switch", "finalize", "rollback")
KINDS = tuple(f"run.{s}{e}" for s in STEPS for e in (".intent", "", ".failed", ".recovered"))
# The steps whose intent may cover each target call (a rollback stages, switches and stops).
COVERS = {"stage": {"stage", "rollback"}, "switch": {"switch", "rollback"},
          "stop_idle": {"finalize", "rollback"}}  # fmt: skip


def run_events(ws: WorkspaceFixture, plan_id: str) -> list[Event]:
    events = audit_log.list_events(ws.base, AuditFilter(plan=plan_id), limit=10_000, ascending=True)
    return [e for e in events if e.kind in KINDS]


def test_every_target_call_happens_under_its_committed_intent(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())  # targets configured; the recording ones stand in for them
    plan_id = ""
    seen: list[tuple[str, str, Any, set[tuple[str, str | None]]]] = []

    def before_call(app: str, call: str, args: Any) -> None:
        with ws.base.db.read() as conn:  # another connection: it sees committed events only
            found = audit.open_intents_of(conn, plan_id, KINDS)
        seen.append((app, call, args, {(e.kind, e.app) for e in found}))

    targets = RecordingTargets(before_call=before_call)
    alice = replace(live(ws), targets=targets.factory)
    outcomes = []
    for version, unhealthy in (("1.0.0", ()), ("2.0.0", ()), ("3.0.0", ("chat-api",))):
        targets.unhealthy = frozenset(unhealthy)
        release_all(alice, version, apps=APPS)
        plan_id = create_plan(alice, "staging", [f"{a}@{version}" for a in APPS]).id
        calls_before = len(seen)
        outcomes.append(run_plan(alice, plan_id).state)

        calls = seen[calls_before:]
        assert calls, version
        for app, call, _args, open_now in calls:
            announced = {kind.split(".")[1] for kind, a in open_now if a == app}
            assert announced & COVERS[call], (version, app, call, open_now)
        events = run_events(ws, plan_id)
        intents = {e.seq: e for e in events if e.kind.endswith(".intent")}
        closing = Counter(e.payload["intent_seq"] for e in events if "intent_seq" in e.payload)
        assert closing == Counter(dict.fromkeys(intents, 1)), version  # one outcome each
        for e in events:
            if e.kind in ("run.stage.intent", "run.switch.intent"):
                assert e.payload["version"] == version and e.payload["epoch"] >= 1, e.payload
        # every target call of a step has that step's intent, and no intent went without calls
        stepped = {(app, s) for app, call, _, open_now in calls for s in COVERS[call]}
        assert {(e.app, e.kind.split(".")[1]) for e in intents.values()} <= stepped, version
    assert outcomes == ["succeeded", "succeeded", "rolled_back"]
    assert [c for _, c, _, _ in seen].count("switch") == 2 + 2 + 2  # 3.0.0: ms there and back
    result = audit_log.verify(ws.base)
    assert result.ok and result.open_intents == ()


def test_a_step_whose_target_fails_closes_its_intent_as_failed(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    targets = RecordingTargets()
    alice = replace(live(ws), targets=targets.factory)
    release_all(alice, "1.0.0", apps=["web"])
    plan_id = create_plan(alice, "staging", ["web@1.0.0"]).id
    targets.factory("web", "staging", "local", {})
    broken = targets.by_app["web"]

    def refuse(app: str, call: str, args: Any) -> None:
        from shipdeck.core.errors import AdapterError

        if call == "switch":
            raise AdapterError("web: the load balancer refused the switch")

    broken.before_call = refuse
    assert run_plan(alice, plan_id).state == "rolled_back"
    events = run_events(ws, plan_id)
    [intent] = [e for e in events if e.kind == "run.switch.intent"]
    [failed] = [e for e in events if e.kind == "run.switch.failed"]
    assert failed.payload["intent_seq"] == intent.seq
    assert failed.payload["error"] == "web: the load balancer refused the switch"
    assert audit_log.verify(ws.base).open_intents == ()


def verify_json(ws: WorkspaceFixture) -> dict[str, Any]:
    done = cli(ws, "-o", "json", "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def killed_upgrade(ws: WorkspaceFixture, alice: Context, point: str) -> PlanView:
    """1.0.0 live on staging, then a run to 2.0.0 whose runner is killed at `point`."""
    release_all(alice, "1.0.0", apps=APPS)
    assert run_plan(alice, create_plan(alice, "staging", list(APPS)).id).ok
    release_all(alice, "2.0.0", apps=APPS)
    plan = create_plan(alice, "staging", [f"{a}@2.0.0" for a in APPS])
    killed = cli(
        ws, "plan", "run", plan.id, "--wait", "--timeout", "2m",
        extra_env={"SHIPDECK_FAILPOINT": point},
    )  # fmt: skip
    assert killed.returncode == 5, killed.stderr
    return plan


@pytest.mark.slow
@pytest.mark.parametrize(
    "point, switched",
    [("before:switch:chat-api", False), ("after:switch:chat-api", True)],
)
def test_a_runner_killed_after_its_intent_leaves_it_open_until_reconcile_closes_it(
    ws: WorkspaceFixture, point: str, switched: bool
) -> None:
    with shipping(ws):
        alice = live(ws)
        plan = killed_upgrade(ws, alice, point)
        assert get_version(front_port(ws, "chat-api", "staging")) == (
            "2.0.0" if switched else "1.0.0"
        )
        [intent] = [
            e
            for e in run_events(ws, plan.id)
            if (e.kind, e.app) == ("run.switch.intent", "chat-api")
        ]
        doc = verify_json(ws)
        assert doc["open_intents"] == [intent.seq]
        assert any(f"events {intent.seq})" in w for w in doc["warnings"]), doc["warnings"]

        fixed = cli(ws, "-o", "json", "reconcile")
        assert fixed.returncode == 0, fixed.stderr
        report = json.loads(fixed.stdout)
        assert report["open_intents"] == []
        assert get_plan(alice, plan.id).state == ("succeeded" if switched else "rolled_back")
        [found] = [e for e in run_events(ws, plan.id) if e.kind == "run.switch.recovered"]
        color = intent.payload["color"]
        assert found.app == "chat-api" and found.payload["intent_seq"] == intent.seq
        assert found.payload["color"] == color
        assert found.payload["live_color"] == (color if switched else {"blue": "green"}.get(
            color, "blue"
        ))  # fmt: skip
        assert found.payload["staged_version"] == "2.0.0"
        after = verify_json(ws)
        assert after["ok"] is True and after["open_intents"] == []
        assert not any("without an outcome" in w for w in after["warnings"])


@pytest.mark.slow
def test_a_runner_killed_inside_the_intent_transaction_records_and_changes_nothing(
    ws: WorkspaceFixture,
) -> None:
    """SIGKILL after the intent was written but before its transaction committed: neither the
    journal row nor the intent exists, and the target was never asked."""
    with shipping(ws):
        alice = live(ws)
        plan = killed_upgrade(ws, alice, "in:switch:chat-api")
        assert get_version(front_port(ws, "chat-api", "staging")) == "1.0.0"
        kinds = [(e.kind, e.app) for e in run_events(ws, plan.id)]
        assert ("run.switch.intent", "model-server") in kinds  # the first wave went through
        assert ("run.stage", "chat-api") in kinds  # closed before the switch was announced
        assert ("run.switch.intent", "chat-api") not in kinds
        assert verify_json(ws)["open_intents"] == []  # nothing announced that may have happened
        fixed = cli(ws, "-o", "json", "reconcile")
        assert fixed.returncode == 0, fixed.stderr
        assert get_plan(alice, plan.id).state == "rolled_back"
        assert verify_json(ws)["open_intents"] == []
