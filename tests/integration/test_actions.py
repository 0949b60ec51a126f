"""Allowed actions: what each person may do with a plan or an app now, and why not."""

from __future__ import annotations

from shipdeck.core.services.actions import TASKS, app_actions, plan_actions, task_actions
from shipdeck.core.services.plans import approve, create_plan, get_plan
from tests.integration.shipping import local_toml, release_all
from tests.support.deployments import record_deployment
from tests.support.workspace import BASIC_TOML, WorkspaceFixture


def kinds(actions: dict, name: str) -> list[str]:  # type: ignore[type-arg]
    return [r.kind for r in actions[name].reasons]


def test_plan_actions_per_person(ws: WorkspaceFixture) -> None:
    ws.write_config(
        local_toml(env_extra={"prod": 'protected = true\ntask_roles = ["release-managers"]'})
    )
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "prod", ["web"])

    mine = plan_actions(alice, plan)
    assert kinds(mine, "approve") == ["not_permitted", "self_approval"]
    assert mine["approve"].why_not == "alice is not in approvers"
    assert mine["abort"].allowed and mine["override"].allowed and mine["tick"].allowed
    assert set(kinds(mine, "run")) == {"approvals_missing", "checklist_incomplete", "not_promoted"}
    # a window lifts none of these by itself: queueing for it is refused with the same reasons
    assert set(kinds(mine, "queue")) == set(kinds(mine, "run"))
    assert mine["queue"].why_not.startswith(f"plan {plan.id} cannot be queued: ")
    assert not mine["unqueue"].applies  # nothing queued

    bob = ws.as_user("bob")
    theirs = plan_actions(bob, plan)
    assert theirs["approve"].allowed and theirs["reject"].allowed and theirs["tick"].allowed
    assert kinds(theirs, "override") == ["not_permitted"]
    assert theirs["override"].why_not == "bob (approvers) lacks permission 'override'"
    after = plan_actions(bob, approve(bob, plan.id))
    assert kinds(after, "approve") == ["already_approved"] and after["reject"].allowed

    erin = plan_actions(ws.as_user("erin"), get_plan(alice, plan.id))
    assert all(not a.allowed for a in erin.values())
    read_only = plan_actions(ws.as_user("bob", read_only=True), get_plan(alice, plan.id))
    assert read_only["approve"].why_not == "this session is read-only"

    draft = create_plan(alice, "staging", ["web"], draft=True)
    assert plan_actions(alice, draft)["run"].reasons[0].message == (
        f"plan {draft.id} is a draft: submit it before it can be run"
    )
    assert kinds(plan_actions(bob, draft), "approve") == ["state", "nothing_to_do"]
    assert kinds(plan_actions(alice, draft), "queue") == ["state"]
    release_all(alice, "1.0.0", apps=["chat-api"])
    free = create_plan(alice, "staging", ["chat-api"])
    assert kinds(plan_actions(alice, free), "queue") == ["nothing_to_do"]  # run it instead


def test_app_actions_per_person(ws: WorkspaceFixture) -> None:
    ws.write_config(
        local_toml(env_extra={"prod": 'protected = true\ntask_roles = ["release-managers"]'})
    )
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=["web"])
    release_all(alice, "1.1.0", apps=["web"])

    first = app_actions(alice, "web", "prod")
    assert first["deploy"].allowed and first["task.restart"].allowed
    assert first["rollback"].reasons[0].message == (
        "nothing of web is deployed in prod: nothing to roll back"
    )
    record_deployment(alice, "web", "prod", "1.0.0")
    record_deployment(alice, "web", "prod", "1.1.0", color="green")
    assert app_actions(alice, "web", "prod")["rollback"].allowed

    approver = app_actions(ws.as_user("bob"), "web", "prod")
    assert approver["task.logs"].why_not == "bob (approvers) lacks permission 'task.logs'"
    assert kinds(approver, "deploy") == ["not_permitted"]


def test_task_actions_say_why_without_reading_the_database(ws: WorkspaceFixture) -> None:
    """The day-2 tasks alone (what the Ops screen greys out on every key): the task role a
    protected environment asks for, a target with no token limits, an app with no target."""
    ws.write_config(
        local_toml(env_extra={"prod": 'protected = true\ntask_roles = ["approvers"]'})
        + '\n[apps.model-server.targets.prod.token_limits]\nadapter = "litellm-file"\n'
        'path = "gateway.yaml"\nmodel = "model-server"\n'
    )
    alice = ws.as_user("alice")
    prod = task_actions(alice, "model-server", "prod")
    assert prod["task.logs"].why_not == "alice is not in approvers"
    assert prod["task.token-limit"].why_not == "alice is not in approvers"
    staging = task_actions(alice, "web", "staging")
    assert staging["task.logs"].allowed
    assert kinds(staging, "task.token-limit") == ["not_configured"]
    assert staging["task.token-limit"].why_not == "web has no token limits in staging"
    ws.write_config(BASIC_TOML)  # no targets at all
    none = task_actions(ws.as_user("alice"), "web", "staging")
    assert [kinds(none, t) for t in TASKS] == [["no_target"]] * 3
