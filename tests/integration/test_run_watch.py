"""`run_watch.watch`, the one loop both followers (the TUI's run view, the CLI's `--wait`) read a
run through: every journal step exactly once, in order, and the end seen when it comes.
SQLite and PostgreSQL (the `ws` fixture runs both); recording targets stand in for the world."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shipdeck.core.services.plans import create_plan, get_plan
from shipdeck.core.services.run_watch import RunProgress, watch
from shipdeck.core.services.runs import run_plan
from tests.fakes.targets import RecordingTargets
from tests.integration.shipping import live, local_toml, release_all
from tests.support.workspace import WorkspaceFixture

APPS = ("model-server", "chat-api")  # two waves


def test_a_follower_sees_every_step_once_and_the_end(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    snapshots: list[RunProgress] = []
    follower = None

    def look(app: str, call: str, _args: Any) -> None:
        if call == "switch" and follower is not None:  # mid-run, from the runner's own thread
            snapshots.append(next(follower))

    targets = RecordingTargets(before_call=look)
    alice = replace(live(ws), targets=targets.factory)
    release_all(alice, "1.0.0", apps=APPS)
    plan_id = create_plan(alice, "staging", [f"{a}@1.0.0" for a in APPS]).id
    follower = watch(alice, plan_id, wait=lambda: True)
    snapshots.append(next(follower))  # before the run: its state, no steps yet

    assert run_plan(alice, plan_id).state == "succeeded"
    snapshots += list(follower)

    assert snapshots[0].state == "approved" and snapshots[0].fresh == ()
    assert [s.state for s in snapshots[1:3]] == ["running", "running"]  # one look per switch
    assert all(s.fresh for s in snapshots[1:])  # a snapshot only when something moved
    assert snapshots[-1].ended and snapshots[-1].state == "succeeded"
    seen = [step.id for s in snapshots for step in s.fresh]
    assert seen == [step.id for step in get_plan(alice, plan_id).steps]  # all, once, in order


def test_a_follower_asked_to_stop_stops_without_the_run_ending(ws: WorkspaceFixture) -> None:
    ws.write_config(local_toml())
    alice = live(ws)
    release_all(alice, "1.0.0", apps=["web"])
    plan_id = create_plan(alice, "staging", ["web@1.0.0"]).id
    looks: list[RunProgress] = list(watch(alice, plan_id, wait=lambda: False))
    assert [(s.state, s.ended) for s in looks] == [("approved", False)]
