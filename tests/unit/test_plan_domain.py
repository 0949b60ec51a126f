"""The plan model: its state machine, its digest, its encoding, and the DORA arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shipdeck.core.domain.config import ApprovalPolicy, ChecklistItem, Environment
from shipdeck.core.domain.metrics import DeploymentFact, compute
from shipdeck.core.domain.plan import (
    STATES,
    TERMINAL,
    TRANSITIONS,
    PlanBody,
    PlanItem,
    check_transition,
    checklist,
    extra_items,
    parse_item_spec,
    plan_digest,
)
from shipdeck.core.errors import ConflictError

ENV = Environment(
    "prod",
    1,
    approvals=ApprovalPolicy(2, ("approvers",)),
    checklist=(ChecklistItem("notes", "Notes"),),
)
BODY = PlanBody(
    env="prod",
    kind="plan",
    items=(
        PlanItem("chat-api", "1.2.0", 7, "sha256:c", "c" * 40, "dave"),
        PlanItem("model-server", "3.0.0", 4, "sha256:m", "m" * 40, "alice"),
    ),
    waves=(("model-server",), ("chat-api",)),
)


def test_every_state_has_its_transitions_and_terminal_states_none() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    assert "running" in TRANSITIONS["approved"]
    assert "running" not in TRANSITIONS["draft"]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("succeeded", "running", "is succeeded: it is finished and cannot become running"),
        ("draft", "running", "submit it first"),
        ("running", "approved", "wait for it, or 'shipdeck plan abort'"),
        ("aborted", "awaiting_approval", "cannot become awaiting approval"),
    ],
)
def test_illegal_transitions_are_refused_with_a_sentence(old: str, new: str, words: str) -> None:
    with pytest.raises(ConflictError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_transition("p-1", old, new)


def test_legal_transitions_pass() -> None:
    for old, news in TRANSITIONS.items():
        for new in news:
            check_transition("p-1", old, new)


def test_the_digest_covers_releases_waves_checklist_and_policy() -> None:
    base = plan_digest(ENV, BODY)
    assert base == plan_digest(ENV, PlanBody.decode(BODY.encode()))
    other_release = replace(BODY, items=(replace(BODY.items[0], digest="sha256:x"), BODY.items[1]))
    other_waves = replace(BODY, waves=(("chat-api", "model-server"),))
    extra = replace(BODY, extra_checklist=extra_items(["Tell support"]))
    halt = replace(BODY, failure_policy="halt")
    stricter = replace(ENV, approvals=ApprovalPolicy(3, ("approvers",)))
    more_items = replace(ENV, checklist=(*ENV.checklist, ChecklistItem("scan", "Scan", ("scan",))))
    digests = {
        plan_digest(ENV, other_release),
        plan_digest(ENV, other_waves),
        plan_digest(ENV, extra),
        plan_digest(ENV, halt),
        plan_digest(stricter, BODY),
        plan_digest(more_items, BODY),
        plan_digest(replace(ENV, name="staging"), BODY),
        plan_digest(replace(ENV, requires_previous=True), BODY),
    }
    assert base not in digests and len(digests) == 8
    # The display name and who recorded a release do not change what is shipped.
    same = replace(BODY, items=(replace(BODY.items[0], author="erin"), BODY.items[1]))
    assert plan_digest(ENV, same) == base


def test_the_body_round_trips_through_its_canonical_encoding() -> None:
    body = replace(
        BODY,
        kind="rollback",
        extra_checklist=(ChecklistItem("smoke", "Smoke", ("python", "-c", "pass")),),
        replaces={"chat-api": 12},
    )
    again = PlanBody.decode(body.encode())
    assert again == body
    assert again.apps == ["model-server", "chat-api"]
    assert again.item("chat-api").release_id == 7


def test_the_plan_checklist_is_the_envs_then_its_own_extras() -> None:
    body = replace(BODY, extra_checklist=extra_items(["Notes", "Tell support!"]))
    assert [c.id for c in checklist(ENV, body)] == ["notes", "tell-support"]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("chat-api@1.2.0", ("chat-api", "1.2.0")), ("web", ("web", None))],
)
def test_item_specs(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_item_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["@1.0", "web@", ""])
def test_bad_item_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="APP@VERSION"):
        parse_item_spec(spec)


def test_dora_arithmetic() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    h = timedelta(hours=1)
    facts = [
        DeploymentFact("a", "prod", t0, "deploy", "succeeded", None, t0 - 10 * h),
        DeploymentFact("a", "prod", t0 + 24 * h, "deploy", "rolled_back", t0 + 25 * h, t0 - 2 * h),
        DeploymentFact("a", "prod", t0 + 25 * h, "rollback", "succeeded", None, None),
        DeploymentFact("b", "prod", t0 + 48 * h, "deploy", "failed", t0 + 48 * h, None),
        DeploymentFact("b", "prod", t0 + 49 * h, "deploy", "succeeded", None, t0 + 40 * h),
        DeploymentFact("b", "staging", t0, "deploy", "succeeded", None, t0),
        DeploymentFact("b", "prod", t0 - 30 * 24 * h, "deploy", "succeeded", None, None),  # too old
    ]
    m = compute(facts, "prod", t0 - h, t0 + 9 * 24 * h + 23 * h)
    assert m.deployments == 3  # two succeeded and one later rolled back; failed never took traffic
    # One change failure (the rolled-back deploy) of three deployments; b's pre-switch failure
    # never took traffic: a failed attempt, outside both counts.
    assert m.attempts == 4 and m.failed_attempts == 1
    assert m.failures == 1 and m.change_failure_rate == pytest.approx(1 / 3)
    assert m.per_day == pytest.approx(0.3)
    assert m.lead_time_median == 10 * h  # of 10h, 26h, 9h
    assert m.lead_time_p90 == 26 * h
    assert m.time_to_restore_median == h and m.restores == 1
    assert m.cells()["change failures"] == "33%  (1 of 3)"
    assert m.cells()["time to restore"] == "median 1h 00m  (1 restore)"
    empty = compute([], "prod", t0, t0 + h)
    assert empty.change_failure_rate is None and empty.lead_time_median is None
    assert empty.as_dict()["change_failure_rate"]["rate"] is None
