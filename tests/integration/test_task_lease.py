"""Day-2 changes hold the environment lease for as long as they act (issue 10): a restart can
neither overlap a run nor another restart, and is refused, touching nothing, while a plan holds
the environment. Both refusals use the one sentence policy.lock_blockers gives. Recording
targets stand in for the world; SQLite and PostgreSQL (the `ws` fixture runs both)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shipdeck.core.errors import BlockedError
from shipdeck.core.services import audit_log, tasks
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import start_run
from tests.fakes.targets import RecordingTarget
from tests.integration.shipping import local_toml, release_all
from tests.support.workspace import WorkspaceFixture


def acting(ws: WorkspaceFixture, target: RecordingTarget) -> Context:
    ws.write_config(local_toml())
    return replace(ws.as_user("alice"), targets=target.factory)


def test_a_restart_holds_the_lease_until_it_is_done(ws: WorkspaceFixture) -> None:
    refused: list[str] = []
    target = RecordingTarget()
    alice = acting(ws, target)
    release_all(alice, "1.0.0", apps=["web"])
    plan_id = create_plan(alice, "staging", ["web@1.0.0"]).id

    def meanwhile(_app: str, call: str, _args: Any) -> None:
        if call != "restart":
            return
        other = replace(ws.as_user("alice"), targets=RecordingTarget().factory)  # a second session
        for attempt in (
            lambda: start_run(other, plan_id),
            lambda: tasks.restart(other, "web", "staging"),
        ):
            with pytest.raises(BlockedError) as blocked:
                attempt()
            refused.append(blocked.value.message)

    target.before_call = meanwhile
    assert tasks.restart(alice, "web", "staging").ok
    assert (
        refused
        == [
            "staging is locked by alice running a day-2 task since 2026-11-24 12:00 UTC",
        ]
        * 2
    )
    assert [c for c, _ in target.calls] == ["restart"]
    assert start_run(alice, plan_id).epoch > 0  # released once the restart was done


def test_a_restart_is_refused_while_a_plan_holds_the_environment(ws: WorkspaceFixture) -> None:
    target = RecordingTarget()
    alice = acting(ws, target)
    release_all(alice, "1.0.0", apps=["web"])
    plan_id = create_plan(alice, "staging", ["web@1.0.0"]).id
    start_run(alice, plan_id)  # the lease is the plan's; its runner is not needed to hold it
    with pytest.raises(BlockedError) as blocked:
        tasks.restart(alice, "web", "staging", reason="stuck worker")
    assert blocked.value.message == (
        f"staging is locked by alice running plan {plan_id} since 2026-11-24 12:00 UTC"
    )
    assert int(blocked.value.exit_code) == 3
    assert target.calls == []
    assert audit_log.list_events(ws.base, AuditFilter(kind="task.restart*")) == []
