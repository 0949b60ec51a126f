"""The pure policy: every blocker kind, its sentence, and what lifts it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shipdeck.core.domain.config import ApprovalPolicy, ChecklistItem, Environment
from shipdeck.core.domain.policy import (
    ApprovalFact,
    LockFact,
    OverrideFact,
    PlanFacts,
    PromotionFact,
    TickFact,
    evaluate,
    valid_approvers,
)
from shipdeck.core.domain.windows import FreezeSpec, WindowSpec, window_state
from shipdeck.core.errors import Blocker

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # Tuesday, 21:00 in Berlin
PROD = Environment(
    "prod",
    1,
    approvals=ApprovalPolicy(2, ("approvers",)),
    checklist=(
        ChecklistItem("notes", "Release notes reviewed"),
        ChecklistItem("oncall", "On-call informed"),
    ),
    requires_previous=True,
)
ROLES = {"approvers": ("bob", "carol", "dave"), "release-managers": ("alice",)}
PLAN = PlanFacts(
    id="p-1",
    env="prod",
    digest="sha256:" + "a" * 64,
    author="alice",
    items=(("chat-api", "1.2.0", "dave"), ("web", "2.0.0", "alice")),
    checklist=PROD.checklist,
)
OPEN = window_state([], [], NOW)


def approval(by: str, digest: str = PLAN.digest, decision: str = "approve") -> ApprovalFact:
    return ApprovalFact(
        by, NOW, digest, decision, tuple(r for r, users in ROLES.items() if by in users)
    )


def check(**kw: object) -> list[Blocker]:
    args: dict[str, object] = {
        "approvals": [approval("bob"), approval("carol")],
        "ticks": {c.id: TickFact(c.id, "bob", NOW, True) for c in PROD.checklist},
        "window": OPEN,
        "window_tz": "Europe/Berlin",
        "promotion": [PromotionFact("chat-api", "1.2.0", "staging", True)],
        "lock": None,
        "overrides": [],
        "role_members": ROLES,
        "now": NOW,
    }
    args.update(kw)
    plan = args.pop("plan", PLAN)
    return evaluate(plan, PROD, **args)  # type: ignore[arg-type]


def only(blockers: list[Blocker], kind: str) -> Blocker:
    found = [b for b in blockers if b.kind == kind]
    assert len(found) == 1, blockers
    return found[0]


def test_a_plan_with_everything_in_place_may_run() -> None:
    assert check() == []


def test_missing_approvals_count_distinct_people_from_the_roles() -> None:
    blockers = check(approvals=[approval("bob"), approval("bob"), approval("alice")])
    b = only(blockers, "approvals_missing")
    assert b.message == "needs 1 more approval from approvers (has 1 of 2: bob)"
    assert b.detail["missing"] == 1 and b.detail["by"] == ["bob"]


def test_an_approval_for_an_older_digest_is_stale() -> None:
    blockers = check(approvals=[approval("bob", digest="sha256:old"), approval("carol")])
    assert only(blockers, "approvals_missing").message.startswith("needs 1 more approval")
    stale = only(blockers, "stale_approval")
    assert stale.message.startswith("the plan changed after bob approved it")
    assert stale.detail["by"] == ["bob"]


def test_release_authors_do_not_count_and_the_pool_is_explained() -> None:
    # dave wrote the chat-api release; his approval does not count.
    blockers = check(approvals=[approval("dave"), approval("bob")])
    b = only(blockers, "self_approval")
    assert b.message.startswith(
        "dave authored this plan or one of its releases and cannot approve it"
    )
    assert valid_approvers(PLAN, PROD, [approval("dave"), approval("bob")]) == ["bob"]
    # Without dave's attempt: carol is still there, so the pool is not a blocker.
    assert [x.kind for x in check(approvals=[approval("bob")])] == ["approvals_missing"]


def test_a_pool_too_small_after_authors_is_a_self_approval_blocker() -> None:
    small = {"approvers": ("bob", "dave")}
    b = only(check(approvals=[approval("bob")], role_members=small), "self_approval")
    assert b.message == (
        "dave authored this plan or one of its releases and cannot approve it; nobody else can approve"
    )


def test_checklist_items_and_failed_commands_are_named() -> None:
    ticks = {"notes": TickFact("notes", "carol", NOW, False)}
    b = only(check(ticks=ticks), "checklist_incomplete")
    assert b.message == (
        "2 of 2 checklist items open: 'Release notes reviewed'; 'On-call informed' "
        "(command failed for 'Release notes reviewed')"
    )
    assert b.detail["open"] == ["notes", "oncall"]


def test_windows_say_when_they_open_in_the_windows_zone() -> None:
    business = WindowSpec("business", "0 9 * * 1-5", timedelta(hours=8), "Europe/Berlin", "allow")
    closed = window_state([business], [], NOW)
    b = only(check(window=closed), "window_closed")
    assert (
        b.message
        == "prod window opens Wed 09:00 Europe/Berlin, in 12h (outside every allow window (business))"
    )
    assert b.detail["next_open"] == "2026-11-25T08:00:00+00:00"


def test_a_freeze_is_its_own_kind_and_deny_wins_over_allow() -> None:
    always = WindowSpec("always", "0 0 * * *", timedelta(days=1), "UTC", "allow")
    deny = WindowSpec("evening", "0 19 * * *", timedelta(hours=3), "UTC", "deny")
    denied = window_state([always, deny], [], NOW)
    assert only(check(window=denied), "window_closed").message.startswith("prod window opens 23:00")
    freeze = FreezeSpec("xmas", NOW - timedelta(days=1), NOW + timedelta(days=2), "holidays")
    frozen = window_state([always], [freeze], NOW)
    b = only(check(window=frozen), "frozen")
    assert b.message.startswith(
        "prod frozen until Thu 21:00 Europe/Berlin, in 2d (frozen by 'xmas'"
    )
    assert "(holidays)" in b.message


def test_an_active_override_lifts_windows_and_freezes_only() -> None:
    freeze = FreezeSpec("xmas", NOW - timedelta(days=1), NOW + timedelta(days=2))
    frozen = window_state([], [freeze], NOW)
    live = OverrideFact(1, "alice", "incident", NOW + timedelta(hours=1))
    expired = OverrideFact(2, "alice", "old", NOW - timedelta(minutes=1))
    assert check(window=frozen, overrides=[live]) == []
    assert [b.kind for b in check(window=frozen, overrides=[expired])] == ["frozen"]
    still = check(window=frozen, overrides=[live], approvals=[])
    assert [b.kind for b in still] == ["approvals_missing"]


def test_the_lock_names_its_holder_unless_it_is_this_plan() -> None:
    lock = LockFact("carol", "p-9", NOW - timedelta(minutes=5))
    b = only(check(lock=lock), "locked")
    assert b.message == "prod is locked by carol running plan p-9 since 2026-11-24 19:55 UTC"
    assert b.detail == {"holder": "carol", "plan": "p-9"}
    assert check(lock=LockFact("alice", "p-1", NOW)) == []


def test_promotion_requires_success_in_the_previous_environment() -> None:
    b = only(check(promotion=[PromotionFact("web", "2.0.0", "staging", False)]), "not_promoted")
    assert b.message == "web 2.0.0 has not succeeded in staging yet (ship it there first)"


def test_every_kind_at_once_in_a_stable_order() -> None:
    freeze = FreezeSpec("xmas", NOW - timedelta(days=1), NOW + timedelta(days=2))
    blockers = check(
        approvals=[approval("dave"), approval("bob", digest="sha256:old")],
        ticks={},
        window=window_state([], [freeze], NOW),
        promotion=[PromotionFact("web", "2.0.0", "staging", False)],
        lock=LockFact("carol", "p-9", NOW),
        role_members={"approvers": ("bob", "dave")},
    )
    assert [b.kind for b in blockers] == [
        "locked",
        "frozen",
        "not_promoted",
        "approvals_missing",
        "stale_approval",
        "self_approval",
        "checklist_incomplete",
    ]
    assert all(b.message and "\n" not in b.message for b in blockers)


def test_an_app_without_a_target_is_named_first() -> None:
    drifted = replace(PLAN, untargeted=("web",))
    blockers = check(plan=drifted, lock=LockFact("carol", "p-9", NOW))
    assert [b.kind for b in blockers] == ["target_missing", "locked"]
    assert blockers[0].as_dict() == {
        "kind": "target_missing",
        "message": "web has no target in prod in shipdeck.toml"
        " (add [apps.web.targets.prod] or plan without web)",
        "app": "web",
    }
