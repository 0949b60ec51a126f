"""Configuration drift: an app's target removed from shipdeck.toml after its plan was approved,
or while it ran. Policy names it (`target_missing`, exit 3), and the runner and reconcile fail the
plan with an audited reason instead of dying, so the incident path (reconcile, deploy, rollback)
stays open. Through the real CLI wherever a person would meet it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from shipdeck.core.services import audit_log
from shipdeck.core.services.plans import create_plan, get_plan
from shipdeck.core.services.runs import execute_run, start_run
from tests.integration.shipping import local_toml, release_all
from tests.support.cli import shipdeck
from tests.support.workspace import FixedClock, WorkspaceFixture

GONE = "web has no target in staging in shipdeck.toml (add [apps.web.targets.staging] or plan without web)"


def _without_web_staging(toml: str) -> str:
    """The same workspace with [apps.web.targets.staging] removed."""
    return re.sub(r"\[apps\.web\.targets\.staging\]\n(?:[^\[\n][^\n]*\n)*", "", toml)


def _without_staging(toml: str) -> str:
    """The same workspace with the staging environment and every staging target removed."""
    toml = re.sub(r"\[apps\.[a-z-]+\.targets\.staging\]\n(?:[^\[\n][^\n]*\n)*", "", toml)
    toml = toml.replace("[environments.staging]\n", "").replace("requires_previous = true\n", "")
    return toml


def _approved_web_plan(ws: WorkspaceFixture) -> tuple[str, str]:
    toml = local_toml()
    ws.write_config(toml)
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "staging", ["web"])
    assert plan.blockers == ()
    return plan.id, toml


def test_plan_show_names_the_missing_target_and_plan_run_exits_3(ws: WorkspaceFixture) -> None:
    plan_id, toml = _approved_web_plan(ws)
    ws.write_config(_without_web_staging(toml))

    shown = shipdeck("-o", "json", "plan", "show", plan_id, env=ws.env())
    assert shown.code == 0, shown.err
    blockers = shown.json()["plan"]["blockers"]
    assert [(b["kind"], b["message"]) for b in blockers] == [("target_missing", GONE)]

    ran = shipdeck("plan", "run", plan_id, env=ws.env())
    assert ran.code == 3, ran.err
    assert GONE in ran.err and "Traceback" not in ran.err
    assert get_plan(ws.as_user("alice"), plan_id).state != "running"


def test_the_runner_fails_the_plan_with_an_audited_reason(ws: WorkspaceFixture) -> None:
    plan_id, toml = _approved_web_plan(ws)
    ticket = start_run(ws.as_user("alice"), plan_id)
    ws.write_config(_without_web_staging(toml))  # removed while the run starts

    result = execute_run(ws.as_user("alice"), ticket)
    assert result.state == "failed"
    assert result.result.startswith(
        "configuration drift: shipdeck.toml has no staging target for web any more"
    )
    failed = audit_log.list_events(ws.as_user("erin"), audit_log.AuditFilter(kind="run.failed"))
    assert [e.payload["result"] for e in failed] == [result.result]
    assert not any(s.step in ("stage", "switch") for s in result.steps)  # no target touched


def test_reconcile_deploy_and_rollback_survive_a_dead_runner_and_drift(
    ws: WorkspaceFixture,
) -> None:
    plan_id, toml = _approved_web_plan(ws)
    # A runner that took the lease long ago and died: its lease has run out.
    past = replace(ws.as_user("alice"), clock=FixedClock(datetime(2020, 1, 1, tzinfo=UTC)))
    start_run(past, plan_id)
    ws.write_config(_without_web_staging(toml))

    rec = shipdeck("-o", "json", "reconcile", env=ws.env())
    assert rec.code == 0, rec.err
    [done] = rec.json()["reconciled"]
    assert (done["plan"], done["state"]) == (plan_id, "failed")
    assert "configuration drift" in done["result"]
    assert get_plan(ws.as_user("alice"), plan_id).state == "failed"

    deploy = shipdeck("deploy", "web", "1.0.0", "--env", "staging", env=ws.env())
    assert (deploy.code, deploy.err_lines) == (
        2,
        ["shipdeck: error: web has no target in staging (add [apps.web.targets.staging])"],
    )
    rollback = shipdeck("rollback", "web", "--env", "staging", env=ws.env())
    assert (rollback.code, rollback.err_lines) == (
        2,
        ["shipdeck: error: web has no target in staging"],
    )
    other = shipdeck("deploy", "chat-api", "1.0.0", "--env", "staging", env=ws.env())
    assert other.code != 1 and "unexpected" not in other.err


def test_reconcile_fails_a_plan_whose_environment_was_removed(ws: WorkspaceFixture) -> None:
    plan_id, toml = _approved_web_plan(ws)
    past = replace(ws.as_user("alice"), clock=FixedClock(datetime(2020, 1, 1, tzinfo=UTC)))
    start_run(past, plan_id)
    ws.write_config(_without_staging(toml))
    assert shipdeck("config", "check", env=ws.env()).code == 0

    rec = shipdeck("-o", "json", "reconcile", env=ws.env())
    assert rec.code == 0, rec.err
    [done] = rec.json()["reconciled"]
    assert done["state"] == "failed"
    assert done["result"].startswith(
        "configuration drift: shipdeck.toml has no staging target for web any more"
    )
