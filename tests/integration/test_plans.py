"""Plans before they run, through the services and the real CLI, on SQLite and PostgreSQL:
every blocker kind with its sentence, digest-bound approvals, self-approval, rejection,
checklist commands, windows and freezes, overrides and their review, the lock."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import pytest

from shipdeck.core.errors import BlockedError, ConflictError, OperationFailed, PermissionDenied
from shipdeck.core.services import audit_log
from shipdeck.core.services.plans import (
    acknowledge_override,
    approve,
    check_item,
    create_plan,
    get_plan,
    list_plans,
    open_reviews,
    override,
    reject,
    submit_plan,
    update_plan,
)
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import abort, run_plan, start_run
from tests.integration.shipping import live, local_toml, release_all, shipping
from tests.support.cli import cli
from tests.support.moto_server import free_port
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

# Approvers may also cut releases and draft plans here, so self-approval can happen.
AUTHORING_APPROVERS = BASIC_TOML.replace(
    'permissions = ["plan.approve", "plan.check"]',
    'permissions = ["plan.approve", "plan.check", "release.create", "plan.create"]',
)


@pytest.fixture(autouse=True)
def targets(ws: WorkspaceFixture) -> None:
    """Every app gets local targets (plans ship only to apps with a target); no process starts
    unless a test runs a plan."""
    ws.write_config(local_toml())


def kinds(view: object) -> list[str]:
    return [b.kind for b in view.blockers]  # type: ignore[attr-defined]


def message(view: object, kind: str) -> str:
    return next(b.message for b in view.blockers if b.kind == kind)  # type: ignore[attr-defined]


def events(ws: WorkspaceFixture, kind: str) -> list[audit_log.Event]:
    return audit_log.list_events(ws.as_user("erin"), audit_log.AuditFilter(kind=kind))


def test_a_prod_plan_explains_every_blocker_and_shows_contract_json(ws: WorkspaceFixture) -> None:
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0")
    shown = cli(ws, "-o", "json", "plan", "create", "--env", "prod", "--name", "first prod")
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)["plan"]
    assert plan["state"] == "awaiting_approval"
    assert plan["waves"] == [["model-server"], ["chat-api"], ["web"]]
    assert plan["digest"].startswith("sha256:")
    assert [i["app"] for i in plan["items"]] == ["model-server", "chat-api", "web"]
    assert plan["checklist"] == [
        {"item": "release-notes-reviewed", "text": "Release notes reviewed", "done": False,
         "by": None, "at": None, "ok": None, "command": None, "output": ""}
    ]  # fmt: skip
    said = [(b["kind"], b["message"]) for b in plan["blockers"]]
    assert ("approvals_missing", "needs 2 more approvals from approvers (has 0 of 2)") in said
    assert ("checklist_incomplete", "1 of 1 checklist item open: 'Release notes reviewed'") in said
    assert [m for k, m in said if k == "not_promoted"] == [
        f"{app} 1.0.0 has not succeeded in staging yet (ship it there first)"
        for app in ("chat-api", "model-server", "web")
    ]

    ran = cli(ws, "-o", "json", "plan", "run", plan["id"])
    assert ran.returncode == 3
    error = json.loads(ran.stdout)["error"]
    assert error["exit_code"] == 3
    assert {b["kind"] for b in error["blockers"]} == {
        "approvals_missing", "checklist_incomplete", "not_promoted",
    }  # fmt: skip
    listed = json.loads(cli(ws, "-o", "json", "plan", "list").stdout)["plans"]
    assert [p["id"] for p in listed] == [plan["id"]]


def test_approvals_bind_to_the_digest_and_a_change_voids_them(ws: WorkspaceFixture) -> None:
    alice, bob, carol = ws.as_user("alice"), ws.as_user("bob"), ws.as_user("carol")
    release_all(alice, "1.0.0")
    plan = create_plan(alice, "prod", ["chat-api@1.0.0", "web@1.0.0"])
    first = approve(bob, plan.id, "looks good")
    assert first.approvals[0].digest == plan.digest and first.approvals[0].current
    assert message(first, "approvals_missing").startswith("needs 1 more approval from approvers")

    changed = update_plan(alice, plan.id, remove=["web"])
    assert changed.digest != plan.digest
    assert changed.state == "awaiting_approval"
    assert message(changed, "approvals_missing").startswith("needs 2 more approvals")
    stale = message(changed, "stale_approval")
    assert "the plan changed after bob approved it" in stale and "must be given again" in stale
    assert not changed.approvals[0].current
    assert [e.payload["old_digest"] for e in events(ws, "plan.changed")] == [plan.digest]

    approve(bob, plan.id)
    done = approve(carol, plan.id)
    assert not {"approvals_missing", "stale_approval"} & set(kinds(done))
    check_item(alice, plan.id, "release-notes-reviewed")
    final = get_plan(alice, plan.id)
    assert final.state == "approved"
    assert kinds(final) == ["not_promoted"]


def test_authors_cannot_approve(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml(AUTHORING_APPROVERS))
    alice, bob, carol = ws.as_user("alice"), ws.as_user("bob"), ws.as_user("carol")
    release_all(alice, "1.0.0", apps=["model-server"])
    create_release(carol, "chat-api", "1.0.0")

    with pytest.raises(PermissionDenied):  # alice is no approver at all
        approve(alice, create_plan(alice, "prod", ["model-server"]).id)

    # not the same content as alice's open plan (that one would be handed back, not duplicated)
    own = create_plan(bob, "prod", ["model-server"], failure_policy="halt")
    with pytest.raises(BlockedError) as refused:
        approve(bob, own.id)
    assert refused.value.blockers[0].kind == "self_approval"
    assert "bob drafted this plan and cannot approve it" in refused.value.message
    assert len(events(ws, "plan.approval_refused")) == 1

    theirs = create_plan(alice, "prod", ["model-server", "chat-api"])
    with pytest.raises(BlockedError):
        approve(carol, theirs.id)  # carol wrote the chat-api release
    after_bob = approve(bob, theirs.id)
    self_blocker = message(after_bob, "self_approval")
    assert "carol authored this plan or one of its releases" in self_blocker
    assert "nobody else can approve" in self_blocker
    denied = cli(ws, "-o", "json", "plan", "approve", own.id, actor="bob")
    assert denied.returncode == 3
    assert json.loads(denied.stdout)["error"]["blockers"][0]["kind"] == "self_approval"


def test_a_rejection_stops_the_plan(ws: WorkspaceFixture) -> None:
    alice, carol = ws.as_user("alice"), ws.as_user("carol")
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "prod", ["web"])
    rejected = reject(carol, plan.id, "no release notes")
    assert rejected.state == "aborted" and "rejected by carol: no release notes" in rejected.result
    with pytest.raises(ConflictError):
        approve(ws.as_user("bob"), plan.id)
    again = cli(ws, "plan", "run", plan.id)
    assert again.returncode == 4 and "finished" in again.stderr
    assert events(ws, "plan.rejected")[0].payload["reason"] == "no release notes"


def test_states_refuse_illegal_transitions(ws: WorkspaceFixture) -> None:
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    draft = create_plan(alice, "prod", ["web"], draft=True)
    assert draft.state == "draft"
    with pytest.raises(ConflictError, match="draft"):
        approve(ws.as_user("bob"), draft.id)
    with pytest.raises(ConflictError, match="draft"):
        start_run(alice, draft.id)
    assert submit_plan(alice, draft.id).state == "awaiting_approval"
    with pytest.raises(ConflictError, match="not a draft"):
        submit_plan(alice, draft.id)
    assert abort(alice, draft.id).state == "aborted"
    with pytest.raises(ConflictError, match="aborted"):
        update_plan(alice, draft.id, remove=["web"])


def test_checklist_items_ticked_by_people_and_by_commands(ws: WorkspaceFixture) -> None:
    scan = f'{{ id = "model-scan", text = "Model scan", command = ["{sys.executable}", "-c", "print(\'0 findings\')"] }}'
    smoke = f'{{ id = "smoke", text = "Smoke test", command = ["{sys.executable}", "-c", "import sys; print(\'boom\'); sys.exit(3)"] }}'
    ws.write_config(
        local_toml(
            BASIC_TOML.replace(
                'checklist = ["Release notes reviewed"]',
                f'checklist = ["Release notes reviewed", {scan}, {smoke}]',
            )
        )
    )
    alice, bob = ws.as_user("alice"), ws.as_user("bob")
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "prod", ["web"], extra_checklist=["Tell support"])
    assert [c.item for c in plan.checklist] == [
        "release-notes-reviewed", "model-scan", "smoke", "tell-support",
    ]  # fmt: skip
    assert message(plan, "checklist_incomplete").startswith("4 of 4 checklist items open")

    tick = check_item(bob, plan.id, "model-scan")
    assert tick.done and tick.output.strip() == "0 findings" and tick.by == "bob"
    with pytest.raises(OperationFailed, match="exit 3"):
        check_item(bob, plan.id, "smoke")
    check_item(bob, plan.id, "release-notes-reviewed", note="read them")
    view = get_plan(alice, plan.id)
    smoke_view = next(c for c in view.checklist if c.item == "smoke")
    assert smoke_view.ok is False and "boom" in smoke_view.output
    assert "command failed for 'Smoke test'" in message(view, "checklist_incomplete")
    assert message(view, "checklist_incomplete").startswith("2 of 4 checklist items open")
    assert [e.payload["ok"] for e in reversed(events(ws, "plan.checked"))] == [True, False, True]


def test_a_deny_window_and_a_freeze_block_until_an_override(ws: WorkspaceFixture) -> None:
    now = ws.clock.at  # Tuesday 2026-11-24 12:00 UTC
    top = (
        '[windows.lunch]\ncron = "0 12 * * 2"\nduration = "1h"\ntimezone = "Europe/Berlin"\n'
        'kind = "deny"\n'
        f'[freezes.audit]\nstart = "{now.isoformat()}"\n'
        f'end = "{(now + timedelta(hours=3)).isoformat()}"\nreason = "quarter close"\n'
    )
    ws.write_config(
        local_toml(
            BASIC_TOML.replace(
                "[environments.staging]\n",
                '[environments.staging]\nwindows = ["lunch"]\nfreezes = ["audit"]\noverride_roles = ["release-managers"]\n',
            ),
            top=top,
        )
    )
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    ws.clock.at = now - timedelta(minutes=30)  # 12:30 in Berlin: the deny window is on
    windowed = create_plan(alice, "staging", ["web"])
    assert kinds(windowed) == ["window_closed"]
    closed = message(windowed, "window_closed")
    assert closed.startswith("staging window opens 16:00 Europe/Berlin, in 3h 30m")
    assert "(deny window 'lunch' is active until Tue 2026-11-24 13:00 Europe/Berlin)" in closed
    ws.clock.at = now
    frozen = get_plan(alice, windowed.id)
    assert kinds(frozen) == ["frozen"]
    assert "frozen by 'audit' (quarter close)" in message(frozen, "frozen")

    with pytest.raises(PermissionDenied):
        override(ws.as_user("erin"), windowed.id, "please", timedelta(hours=1))
    o = override(alice, windowed.id, "customer outage fix", timedelta(hours=2))
    assert get_plan(alice, windowed.id).blockers == ()
    used = events(ws, "override.used")
    assert len(used) == 1 and used[0].payload["reason"] == "customer outage fix"
    assert [r.id for r in open_reviews(alice)] == [o.id]
    with pytest.raises(ConflictError, match="someone else"):
        acknowledge_override(alice, o.id)
    acked = acknowledge_override(ws.as_user("bob"), o.id)
    assert acked.acknowledged_by == "bob" and open_reviews(alice) == []
    ws.clock.at = now + timedelta(hours=2, minutes=1)  # the override ran out; still frozen
    assert kinds(get_plan(alice, windowed.id)) == ["frozen"]
    too_long = cli(ws, "override", windowed.id, "--reason", "x", "--until", "2d")
    assert too_long.returncode == 2


def test_the_lock_names_its_holder(ws: WorkspaceFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lease outlives any CLI start-up under load: no runner renews it here.
    monkeypatch.setenv("SHIPDECK_LEASE_SECONDS", "3600")
    with shipping(ws):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["web", "chat-api"])
        first = create_plan(alice, "staging", ["web"])
        second = create_plan(alice, "staging", ["chat-api"])
        start_run(alice, first.id)  # holds the lease; this test process is its (live) runner
        blocked = get_plan(alice, second.id)
        assert kinds(blocked) == ["locked"]
        assert message(blocked, "locked").startswith(
            f"staging is locked by alice running plan {first.id}"
        )
        ran = cli(ws, "-o", "json", "plan", "run", second.id, actor="alice")
        assert ran.returncode == 3
        assert json.loads(ran.stdout)["error"]["blockers"][0]["holder"] == "alice"
        with pytest.raises(BlockedError, match="locked by alice"):
            run_plan(alice, second.id)
        assert [p.state for p in list_plans(alice, env="staging")] == ["approved", "running"]


def test_a_failing_webhook_is_audited_and_blocks_nothing(ws: WorkspaceFixture) -> None:
    hook = f'[notifications.chat]\nurl = "http://127.0.0.1:{free_port()}/hook"\nevents = ["plan.awaiting_approval"]\n'
    ws.write_config(local_toml(BASIC_TOML + hook))
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "prod", ["web"])
    assert plan.state == "awaiting_approval"
    failed = events(ws, "notify.failed")
    assert len(failed) == 1 and failed[0].payload["notifier"] == "chat"
    assert failed[0].plan == plan.id
