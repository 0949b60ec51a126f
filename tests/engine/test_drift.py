"""Configuration drift: shipdeck.toml drops an app's target after the plan was approved. Before
the run that is a policy blocker naming the app (exit 3); once the run has started (the runner,
or reconcile, reads the changed file) the plan fails with an audited reason naming the app, and
no target is touched: never a KeyError, never a half-run."""

from __future__ import annotations

import re

import pytest

from shipdeck.core.errors import BlockedError
from shipdeck.core.services.runs import launch_run, reconcile, run_plan
from tests.engine.conftest import Rig, with_targets

DRIFT = (
    "configuration drift: shipdeck.toml has no staging target for chat-api any more; failed "
    "without changing anything (restore the target, then deploy or roll back)"
)


def without_chat_api_in_staging() -> str:
    text = with_targets()
    block = re.search(r"\n\[apps\.chat-api\.targets\.staging\]\n(?:[^\[\n][^\n]*\n)*", text)
    assert block is not None
    return text.replace(block.group(0), "\n")


def test_a_target_removed_after_approval_blocks_the_run_naming_it(rig: Rig) -> None:
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    rig.configure(without_chat_api_in_staging())

    with pytest.raises(BlockedError) as blocked:
        run_plan(rig.user(), plan)

    assert blocked.value.exit_code == 3
    assert [(b.kind, b.detail) for b in blocked.value.blockers] == [
        ("target_missing", {"app": "chat-api"})
    ]
    assert rig.state(plan)[0] == "approved" and rig.calls() == []
    assert rig.kinds(plan, "run.") == []


def test_a_target_removed_before_the_runner_starts_fails_the_run_before_any_call(
    rig: Rig,
) -> None:
    rig.shipped("1.0.0")
    plan = launch_run(rig.user(), rig.plan("2.0.0")).plan_id
    rig.configure(without_chat_api_in_staging())  # what the runner reads when it starts

    result = rig.launcher.run(rig.user())

    assert result is not None and (result.state, result.result) == ("failed", DRIFT)
    assert rig.calls() == []
    assert [k for k, _ in rig.kinds(plan, "run.")][-2:] == ["run.runner_admitted", "run.failed"]
    [failed] = [e for e in rig.events(plan) if e.kind == "run.failed"]
    assert failed.payload["result"] == DRIFT


def test_a_target_removed_while_the_runner_was_down_fails_reconcile_without_a_call(
    rig: Rig,
) -> None:
    rig.shipped("1.0.0")
    launch_run(rig.user(), rig.plan("2.0.0"))
    rig.launcher.die()
    rig.configure(without_chat_api_in_staging())

    [done] = reconcile(rig.user())

    assert (done.decision, done.state, done.result) == ("failed", "failed", DRIFT)
    assert rig.calls() == []
