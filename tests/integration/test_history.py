"""Versions, downgrades and history that tells the truth, through the real CLI.

Versions follow `[releases] versions`; "latest" is the highest version; diffs and plans name
downgrades; an identical open plan is handed back instead of duplicated; a blocked deploy keeps
no plan; rollbacks are labelled with from/to, actor and reason, and superseded plans say by what.
"""

from __future__ import annotations

import json
import subprocess

from sqlalchemy import text

from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import run_plan
from tests.integration.shipping import live, local_toml, release_all, shipping
from tests.support.cli import cli
from tests.support.deployments import record_deployment
from tests.support.workspace import BASIC_TOML, WorkspaceFixture


def doc(done: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def plan_count(ws: WorkspaceFixture) -> int:
    with ws.base.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM plan")).scalar_one())


def two_chat_releases(ws: WorkspaceFixture) -> list[str]:
    """1.4.0 at commit 4, then the older 1.3.1 at commit 2, recorded last (a late hotfix)."""
    shas = ws.shas["chat-api"]
    alice = ws.as_user("alice")
    create_release(alice, "chat-api", "1.4.0", commit=shas[4])
    create_release(alice, "chat-api", "1.3.1", commit=shas[2])
    return shas


def test_versions_follow_the_workspace_rule(ws: WorkspaceFixture) -> None:
    bad = cli(ws, "release", "create", "chat-api", "not-a-version")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "shipdeck: error: version 'not-a-version': not a PEP 440 or SemVer version, e.g. 1.4.0, "
        '1.4.0rc1 or 1.4.0-rc.1 (shipdeck.toml [releases] versions = "pep440-or-semver")'
    ]
    assert cli(ws, "release", "create", "chat-api", "1.4.0-rc.1").returncode == 0  # SemVer
    assert cli(ws, "release", "create", "chat-api", "1.4.0rc2").returncode == 0  # PEP 440

    ws.write_config(BASIC_TOML + '\n[releases]\nversions = "semver"\n')
    pep_only = cli(ws, "release", "create", "chat-api", "1.5.0rc1")
    assert pep_only.returncode == 2 and "not a SemVer version" in pep_only.stderr
    assert cli(ws, "release", "create", "chat-api", "1.5.0-rc.1").returncode == 0

    ws.write_config(BASIC_TOML + '\n[releases]\nversions = "calver"\n')
    wrong = cli(ws, "config", "check")
    assert wrong.returncode == 4
    assert "releases.versions: must be one of pep440-or-semver, pep440, semver, any" in wrong.stderr

    ws.write_config(BASIC_TOML + '\n[releases]\nversions = "any"\n')
    assert cli(ws, "release", "create", "chat-api", "blue-moon").returncode == 0


def test_latest_is_the_highest_version_not_the_last_recorded(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    two_chat_releases(ws)
    status = doc(cli(ws, "-o", "json", "status", "--app", "chat-api"))
    assert {e["latest"]["version"] for e in status["apps"][0]["environments"]} == {"1.4.0"}
    listed = doc(cli(ws, "-o", "json", "release", "list", "chat-api"))["releases"]
    assert [r["version"] for r in listed] == ["1.4.0", "1.3.1"]
    plan = doc(cli(ws, "-o", "json", "plan", "create", "--env", "staging", "chat-api"))["plan"]
    assert [(i["app"], i["version"]) for i in plan["items"]] == [("chat-api", "1.4.0")]


def test_release_diff_names_a_downgrade_and_the_commits_it_removes(ws: WorkspaceFixture) -> None:
    shas = two_chat_releases(ws)
    table = cli(ws, "release", "diff", "chat-api", "1.4.0", "1.3.1")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "chat-api 1.4.0 → 1.3.1: downgrade: removes 2 commits"
    assert [line.split()[1] for line in lines[1:3]] == [shas[4][:10], shas[3][:10]]
    assert all(line.startswith("  - ") for line in lines[1:3])

    diff = doc(cli(ws, "-o", "json", "release", "diff", "chat-api", "1.4.0", "1.3.1"))["diff"]
    assert diff["downgrade"] is True and diff["commits"] == []
    assert [c["sha"] for c in diff["removed_commits"]] == [shas[4], shas[3]]
    up = doc(cli(ws, "-o", "json", "release", "diff", "chat-api", "1.3.1", "1.4.0"))["diff"]
    assert up["downgrade"] is False and up["summary"] == "2 commit(s)"


def test_plans_warn_of_downgrades_and_are_not_created_twice(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    two_chat_releases(ws)
    record_deployment(ws.as_user("alice"), "chat-api", "staging", "1.4.0")

    made = cli(ws, "-o", "json", "plan", "create", "--env", "staging", "chat-api@1.3.1")
    plan = doc(made)["plan"]
    assert "warning: downgrade: chat-api 1.4.0 → 1.3.1 (live now)" in made.stderr
    assert plan["downgrades"] == ["downgrade: chat-api 1.4.0 → 1.3.1 (live now)"]
    assert plan["changes"] == [
        {"app": "chat-api", "live_version": "1.4.0", "version": "1.3.1", "downgrade": True}
    ]
    shown = cli(ws, "plan", "show", plan["id"])
    assert "  warning  downgrade: chat-api 1.4.0 → 1.3.1 (live now)" in shown.stdout.splitlines()

    again = cli(ws, "-o", "json", "plan", "create", "--env", "staging", "chat-api@1.3.1")
    twin = doc(again)["plan"]
    assert (twin["id"], twin["reused"]) == (plan["id"], True)
    assert f"plan {plan['id']} is open with exactly this content (same digest)" in again.stderr
    assert plan_count(ws) == 1


def test_a_blocked_deploy_keeps_no_plan(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    two_chat_releases(ws)
    before = plan_count(ws)
    blocked = cli(ws, "-o", "json", "deploy", "chat-api", "1.4.0", "--env", "prod")
    assert blocked.returncode == 3
    error = json.loads(blocked.stdout)["error"]
    assert error["message"].startswith("deploy not started, no plan kept: ")
    assert {b["kind"] for b in error["blockers"]} >= {"approvals_missing", "not_promoted"}
    assert plan_count(ws) == before
    with ws.base.db.read() as conn:
        kinds = [k for (k,) in conn.execute(text("SELECT kind FROM audit_event"))]
    assert "plan.created" not in kinds


def test_rollback_history_is_labelled_and_supersedes(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["chat-api"])
        release_all(alice, "1.1.0", apps=["chat-api"])
        first = create_plan(alice, "staging", ["chat-api@1.0.0"])
        assert run_plan(alice, first.id).ok
        second = create_plan(alice, "staging", ["chat-api@1.1.0"])
        assert run_plan(alice, second.id).ok

        back = cli(ws, "rollback", "chat-api", "--env", "staging", "--reason", "latency regression")
        assert back.returncode == 0, back.stderr

        plans = {p["id"]: p for p in doc(cli(ws, "-o", "json", "plan", "list"))["plans"]}
        (rb,) = [p for p in plans.values() if p["kind"] == "rollback"]
        assert rb["rollback"]["from_version"] == "1.1.0"
        assert rb["rollback"]["to_version"] == "1.0.0"
        assert (rb["rollback"]["by"], rb["rollback"]["reason"]) == ("alice", "latency regression")
        assert rb["rollback"]["approvals_required"] == 0
        (later,) = plans[second.id]["superseded_by"]
        assert (later["plan"], later["kind"], later["rolled_back"]) == (rb["id"], "rollback", True)
        (over_first,) = plans[first.id]["superseded_by"]
        assert (over_first["plan"], over_first["rolled_back"]) == (second.id, False)

        table = cli(ws, "plan", "list").stdout.splitlines()
        notes = table[table.index("history:") + 1 :]
        assert f"  {rb['id']}: rollback of chat-api 1.1.0 → 1.0.0 by alice: latency regression" in (
            notes
        )
        assert any(n.startswith(f"  {second.id}: chat-api: rolled back by {rb['id']} (1.0.0, ")
                   for n in notes)  # fmt: skip
        assert any(
            n.startswith(f"  {first.id}: chat-api: superseded by {second.id}") for n in notes
        )

        detail = cli(ws, "plan", "show", rb["id"]).stdout.splitlines()
        assert "  rollback chat-api 1.1.0 → 1.0.0 by alice: latency regression" in detail
        assert (
            "  approvals: no approvals needed: in staging a rollback needs only the 'rollback' "
            "permission (set [environments.staging] rollback_approvals to require them)"
        ) in detail
        assert any(line.startswith(f"  history  chat-api: rolled back by {rb['id']}") for line in
                   cli(ws, "plan", "show", second.id).stdout.splitlines())  # fmt: skip


def test_protected_rollbacks_ask_first_want_a_reason_and_approvals(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml(env_extra={"prod": "protected = true\nrollback_approvals = 1"}))
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["chat-api"])
    release_all(alice, "1.1.0", apps=["chat-api"])
    record_deployment(alice, "chat-api", "prod", "1.0.0", color="blue")
    record_deployment(alice, "chat-api", "prod", "1.1.0", color="green")

    unexplained = cli(ws, "rollback", "chat-api", "--env", "prod")
    assert unexplained.returncode == 2
    assert "--reason: required for a rollback in protected environment 'prod'" in unexplained.stderr
    unconfirmed = cli(ws, "rollback", "chat-api", "--env", "prod", "--reason", "errors up")
    assert unconfirmed.returncode == 3
    assert "Roll back chat-api in prod from 1.1.0 to 1.0.0? needs confirmation" in (
        unconfirmed.stderr
    )
    assert cli(ws, "rollback", "chat-api", "--env", "staging", actor="erin").returncode == 4
    assert plan_count(ws) == 0

    waiting = cli(ws, "-o", "json", "--yes", "rollback", "chat-api", "--env", "prod",
                  "--reason", "errors up")  # fmt: skip
    assert waiting.returncode == 3
    blocker = json.loads(waiting.stdout)["error"]["blockers"][0]
    assert blocker["kind"] == "approvals_missing"
    assert (
        "needs 1 approval from approvers: [environments.prod] rollback_approvals = 1"
        in (blocker["message"])
    )
    plan_id = blocker["message"].split()[2]
    plan = doc(cli(ws, "-o", "json", "plan", "show", plan_id))["plan"]
    assert (plan["kind"], plan["state"], plan["approvals_required"]) == (
        "rollback", "awaiting_approval", 1,
    )  # fmt: skip
    # a rollback is not held by prod's checklist or promotion rule, only by its approvals
    assert [b["kind"] for b in plan["blockers"]] == ["approvals_missing"]
    approved = doc(cli(ws, "-o", "json", "plan", "approve", plan_id, actor="bob"))["plan"]
    assert (approved["state"], approved["blockers"]) == ("approved", [])
