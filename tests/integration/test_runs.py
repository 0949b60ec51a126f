"""The run engine end to end: real processes behind real front ports, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipdeck.core.errors import ConflictError, TimedOut
from shipdeck.core.services import audit_log
from shipdeck.core.services.context import Context
from shipdeck.core.services.metrics import metrics
from shipdeck.core.services.plans import PlanView, create_plan, get_plan, override
from shipdeck.core.services.runs import abort, rollback, run_plan, start_run, wait_run
from shipdeck.core.services.status import status
from tests.fakes.clock import FakeClock
from tests.integration.shipping import (
    front_port,
    get_version,
    live,
    release_all,
    shipping,
    until_step,
    untracked_app_processes,
)
from tests.support.cli import cli
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

TWO_WAVES = BASIC_TOML.replace(
    '[apps.web]\nrepo = "repos/web"\ndepends_on = ["chat-api"]',
    '[apps.web]\nrepo = "repos/web"\ndepends_on = ["model-server"]',
)


def served(ws: WorkspaceFixture, env: str = "staging") -> dict[str, str]:
    return {a: get_version(front_port(ws, a, env)) for a in ("model-server", "chat-api", "web")}


def served_by(ws: WorkspaceFixture, app: str, env: str = "staging") -> str:
    return get_version(front_port(ws, app, env))


def cells(ws: WorkspaceFixture, env: str = "staging") -> dict[str, object]:
    return {a.app: c for a in status(ws.as_user("erin")) for c in a.cells if c.env == env}


def test_three_apps_in_two_waves_run_in_order_and_in_parallel(ws: WorkspaceFixture) -> None:
    with shipping(ws, base=TWO_WAVES):
        alice = live(ws)
        release_all(alice, "1.0.0")
        made = cli(ws, "-o", "json", "plan", "create", "--env", "staging")
        assert made.returncode == 0, made.stderr
        plan = json.loads(made.stdout)["plan"]
        assert plan["waves"] == [["model-server"], ["chat-api", "web"]]
        assert plan["state"] == "approved" and plan["blockers"] == []

        ran = cli(ws, "-o", "json", "plan", "run", plan["id"], "--wait", "--timeout", "2m")
        assert ran.returncode == 0, ran.stderr + ran.stdout
        doc = json.loads(ran.stdout)
        assert doc["plan"]["state"] == "succeeded"
        steps = doc["run"]["steps"]

        def at(app: str, step: str, state: str) -> str:
            return next(
                s["at"] for s in steps if (s["app"], s["step"], s["state"]) == (app, step, state)
            )

        # Wave 2 starts only after model-server is verified...
        first_wave_done = at("model-server", "verify", "done")
        assert at("chat-api", "stage", "started") >= first_wave_done
        assert at("web", "stage", "started") >= first_wave_done
        # ...and its two apps overlap: each started before the other finished.
        assert at("chat-api", "stage", "started") < at("web", "verify", "done")
        assert at("web", "stage", "started") < at("chat-api", "verify", "done")

        assert served(ws) == {"model-server": "1.0.0", "chat-api": "1.0.0", "web": "1.0.0"}
        now = cells(ws)
        for app in ("model-server", "chat-api", "web"):
            cell = now[app]
            assert cell.deployed is not None and cell.deployed.version == "1.0.0"  # type: ignore[attr-defined]
            assert cell.drift is False and cell.live_color == cell.deployed.color  # type: ignore[attr-defined]
        staging = next(m for m in metrics(alice) if m.env == "staging")
        assert staging.deployments == 3 and staging.failures == 0
        assert staging.lead_time_median is not None
        assert untracked_app_processes(ws) == []
        assert audit_log.verify(alice).ok


def second_wave_fails(alice: Context, **plan_options: Any) -> PlanView:
    """1.0.0 live in staging, then a plan of model-server 1.1.0 (healthy, first wave) and
    chat-api 1.1.0 (whose health check fails, second wave)."""
    release_all(alice, "1.0.0")
    assert run_plan(alice, create_plan(alice, "staging").id).ok
    release_all(alice, "1.1.0", apps=["model-server"])
    release_all(alice, "1.1.0", apps=["chat-api"], demo_health="fail")
    return create_plan(alice, "staging", ["model-server@1.1.0", "chat-api@1.1.0"], **plan_options)


def test_failed_health_never_switches_and_rolls_back_the_earlier_wave(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        plan = second_wave_fails(alice)

        result = run_plan(alice, plan.id)

        assert result.state == "rolled_back" and result.exit_code == 5
        assert "chat-api failed at health" in result.result
        journal = [(s.app, s.step, s.state) for s in result.steps]
        assert ("chat-api", "switch", "started") not in journal
        assert ("model-server", "switch", "done") in journal
        assert ("model-server", "rollback", "done") in journal
        assert served_by(ws, "model-server") == "1.0.0" and served_by(ws, "chat-api") == "1.0.0"
        now = cells(ws)
        assert now["model-server"].deployed.version == "1.0.0"  # type: ignore[attr-defined]
        assert now["model-server"].drift is False  # type: ignore[attr-defined]
        assert now["chat-api"].last_outcome == "failed"  # type: ignore[attr-defined]
        staging = next(m for m in metrics(alice) if m.env == "staging")
        assert staging.failures == 1  # model-server took traffic and was rolled back
        assert staging.failed_attempts == 1  # chat-api failed before its switch
        assert staging.restores == 1
        assert untracked_app_processes(ws) == []


def test_halt_leaves_what_succeeded(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        plan = second_wave_fails(alice, failure_policy="halt")
        result = run_plan(alice, plan.id)
        assert result.state == "failed"
        assert served_by(ws, "model-server") == "1.1.0" and served_by(ws, "chat-api") == "1.0.0"
        assert cells(ws)["model-server"].drift is False  # type: ignore[attr-defined]


def test_a_release_going_bad_while_warm_is_rolled_back(ws: WorkspaceFixture) -> None:
    # The release goes bad when the test says so, once the run is warm: no race with the load.
    with shipping(ws, warm={"staging": "1h"}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["model-server"])
        assert run_plan(alice, create_plan(alice, "staging", ["model-server"]).id).ok
        bad = ws.root / "model-server-1.1.0-is-bad"
        release_all(alice, "1.1.0", apps=["model-server"], demo_health=f"fail-when:{bad}")
        plan = create_plan(alice, "staging", ["model-server@1.1.0"])
        assert cli(ws, "plan", "run", plan.id).returncode == 0
        until_step(alice, plan.id, "warm", "started")
        assert served_by(ws, "model-server") == "1.1.0"
        bad.touch()
        result = wait_run(alice, plan.id, timeout=120)
        assert result.state == "rolled_back", result.result
        assert "went unhealthy while warm" in result.result
        assert served_by(ws, "model-server") == "1.0.0"


def test_a_warm_delay_passes_on_the_engines_clock(ws: WorkspaceFixture) -> None:
    """Ten minutes warm on a fake clock: the engine health-checks once a (fake) second, then
    stops the old color; real time spent is only the checks'."""
    with shipping(ws, warm={"staging": "10m"}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["chat-api"])
        release_all(alice, "1.1.0", apps=["chat-api"])
        assert run_plan(alice, create_plan(alice, "staging", ["chat-api@1.0.0"]).id).ok
        clock = FakeClock(alice.now())
        result = run_plan(
            replace(alice, clock=clock), create_plan(alice, "staging", ["chat-api@1.1.0"]).id
        )
        assert result.ok, result.result
        assert clock.sleeps.count(1.0) == 600 and clock.elapsed >= 600
        warm = [s for s in result.steps if s.step == "warm"]
        assert [s.state for s in warm] == ["started", "done"]
        assert served_by(ws, "chat-api") == "1.1.0"
        assert untracked_app_processes(ws) == []


def test_following_a_run_times_out_on_the_callers_clock(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web"])
        start_run(alice, plan.id)  # running, and no runner moves it on
        clock = FakeClock(alice.now())
        with pytest.raises(TimedOut, match="still running after 30s"):
            wait_run(replace(alice, clock=clock), plan.id, timeout=30, poll=0.2)
        assert 30 <= clock.elapsed < 30.5 and set(clock.sleeps) == {0.2}
        assert get_plan(alice, plan.id).state == "running"


def test_rollback_command_redeploys_the_previous_release(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["chat-api"])
        release_all(alice, "1.1.0", apps=["chat-api"])
        assert run_plan(alice, create_plan(alice, "staging", ["chat-api@1.0.0"]).id).ok
        assert run_plan(alice, create_plan(alice, "staging", ["chat-api@1.1.0"]).id).ok
        assert served_by(ws, "chat-api") == "1.1.0"

        result = rollback(alice, "chat-api", "staging", reason="latency regression")
        assert result.ok, result.result
        assert served_by(ws, "chat-api") == "1.0.0"
        cell = cells(ws)["chat-api"]
        assert cell.deployed.version == "1.0.0" and cell.drift is False  # type: ignore[attr-defined]
        staging = next(m for m in metrics(alice) if m.env == "staging")
        assert staging.restores == 1 and staging.failures == 1
        denied = cli(ws, "rollback", "chat-api", "--env", "staging", actor="erin")
        assert denied.returncode == 4


def test_abort_mid_run_rolls_back_and_timeout_exits_6(ws: WorkspaceFixture) -> None:
    # An hour warm: the run is still there when the timeout and the abort come, whatever the load.
    with shipping(ws, warm={"staging": "1h"}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["web"])
        assert run_plan(alice, create_plan(alice, "staging", ["web"]).id).ok  # no old color: quick
        release_all(alice, "1.1.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web@1.1.0"])

        waited = cli(ws, "plan", "run", plan.id, "--wait", "--timeout", "3s")
        assert waited.returncode == 6, waited.stderr
        assert "goes on in the background" in waited.stderr
        until_step(alice, plan.id, "warm", "started")
        assert get_plan(alice, plan.id).state == "running"
        assert served_by(ws, "web") == "1.1.0"  # switched, old color warm

        stopped = cli(ws, "-o", "json", "plan", "abort", plan.id, "--wait", "--timeout", "1m")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout)["plan"]["state"] == "aborted"
        assert served_by(ws, "web") == "1.0.0"
        assert cells(ws)["web"].drift is False  # type: ignore[attr-defined]
        assert untracked_app_processes(ws) == []
        with pytest.raises(ConflictError):
            abort(alice, plan.id)


def test_a_window_closing_mid_run_holds_the_next_wave(ws: WorkspaceFixture) -> None:
    soon = ws.clock.at + timedelta(minutes=10)
    freeze = (
        "[freezes.soon]\n"
        f'start = "{soon.isoformat()}"\n'
        f'end = "{(soon + timedelta(minutes=30)).isoformat()}"\n'
        'reason = "incident review"\n'
    )
    with shipping(ws, top=freeze, env_extra={"staging": 'freezes = ["soon"]'}):
        alice = ws.as_user("alice")  # the fixture's clock: the test moves time
        release_all(alice, "1.0.0", apps=["model-server", "chat-api"])
        plan = create_plan(alice, "staging", ["model-server", "chat-api"])
        held = threading.Event()

        def progress(step: object) -> None:
            s = step  # StepView
            if (s.app, s.step, s.state) == ("model-server", "verify", "done"):  # type: ignore[attr-defined]
                ws.clock.at = soon + timedelta(minutes=1)  # the freeze begins mid-wave
            if (s.step, s.state) == ("hold", "started"):  # type: ignore[attr-defined]
                held.set()

        outcome: list[object] = []
        runner = threading.Thread(target=lambda: outcome.append(run_plan(alice, plan.id, progress)))
        runner.start()
        assert held.wait(60), "the second wave was not held"
        view = get_plan(alice, plan.id)
        assert view.state == "running"
        assert not any(s.app == "chat-api" and s.step == "stage" for s in view.steps)
        assert "frozen by 'soon'" in next(s.detail for s in view.steps if s.step == "hold")
        ws.clock.at = soon + timedelta(minutes=31)  # the freeze ends
        runner.join(60)
        result = outcome[0]
        assert result.state == "succeeded"  # type: ignore[attr-defined]
        journal = [(s.app, s.step, s.state) for s in result.steps]  # type: ignore[attr-defined]
        assert journal.index(("*", "hold", "done")) < journal.index(
            ("chat-api", "stage", "started")
        )


def test_an_override_lets_a_frozen_plan_run_and_is_audited(ws: WorkspaceFixture) -> None:
    now = datetime.now(UTC)  # the CLI below runs on the real clock
    freeze = (
        "[freezes.now]\n"
        f'start = "{(now - timedelta(hours=1)).isoformat()}"\n'
        f'end = "{(now + timedelta(hours=1)).isoformat()}"\n'
    )
    with shipping(
        ws,
        top=freeze,
        env_extra={"staging": 'freezes = ["now"]\noverride_roles = ["release-managers"]'},
    ):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web"])
        assert [b.kind for b in plan.blockers] == ["frozen"]
        blocked = cli(ws, "-o", "json", "plan", "run", plan.id)
        assert blocked.returncode == 3
        assert json.loads(blocked.stdout)["error"]["blockers"][0]["kind"] == "frozen"
        o = override(alice, plan.id, "hotfix for incident 42", timedelta(minutes=30))
        assert get_plan(alice, plan.id).blockers == ()
        assert run_plan(alice, plan.id).ok
        events = audit_log.list_events(alice, audit_log.AuditFilter(kind="override.used"))
        assert [e.payload["override"] for e in events] == [o.id]  # type: ignore[index]
        start = next(
            e for e in audit_log.list_events(alice, audit_log.AuditFilter(kind="run.started"))
        )
        assert start.payload["override"] == o.id  # type: ignore[index]


def test_wait_run_follows_a_run_from_another_process(ws: WorkspaceFixture) -> None:
    with shipping(ws, warm={"staging": "1s"}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["chat-api"])
        plan = create_plan(alice, "staging", ["chat-api"])
        started = cli(ws, "-o", "json", "plan", "run", plan.id)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["run"]["pid"] > 0
        seen: list[str] = []
        t0 = time.monotonic()
        result = wait_run(
            alice, plan.id, timeout=60, on_step=lambda s: seen.append(f"{s.step}:{s.state}")
        )
        assert time.monotonic() - t0 < 60
        assert result.ok and "switch:done" in seen and seen[-1] == "run:succeeded"
        assert served_by(ws, "chat-api") == "1.0.0"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_deploy_is_a_one_app_plan_under_the_same_policy(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        release_all(live(ws), "1.0.0", apps=["chat-api"])
        ok = cli(ws, "deploy", "chat-api", "1.0.0", "--env", "staging", "--wait")
        assert ok.returncode == 0, ok.stderr
        blocked = cli(ws, "-o", "json", "deploy", "chat-api", "1.0.0", "--env", "prod")
        assert blocked.returncode == 3
        kinds = {b["kind"] for b in json.loads(blocked.stdout)["error"]["blockers"]}
        assert {"approvals_missing", "checklist_incomplete"} <= kinds
        assert "not_promoted" not in kinds  # it succeeded in staging just now
