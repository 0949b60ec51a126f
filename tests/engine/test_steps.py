"""The way forward: every step kind journaled in order, waves one after another (the apps of one
wave side by side), a window that closes mid-run holding the next wave."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shipdeck.core.services.plans import StepView, steps_of
from shipdeck.core.services.runs import HEALTH_ATTEMPTS, run_plan
from tests.engine.conftest import APPS, TWO_WAVES, Rig, journal, with_targets

PER_APP = [
    (step, state)
    for step in ("prepare", "stage", "health", "switch", "verify", "finalize")
    for state in (("done",) if step == "prepare" else ("started", "done"))
]


def test_an_upgrade_journals_every_step_in_order_and_stops_the_old_colors(rig: Rig) -> None:
    rig.configure(with_targets(staging='warm = "30s"'))
    rig.shipped("1.0.0")  # blue
    plan = rig.plan("2.0.0")

    result = run_plan(rig.user(), plan)

    assert (result.state, result.result) == (
        "succeeded",
        "model-server 2.0.0, chat-api 2.0.0, web 2.0.0 live in staging",
    )
    rows = journal(result)
    for app in APPS:
        assert [(s, st) for a, s, st in rows if a == app] == PER_APP, app
    last_verify = max(rows.index((a, "verify", "done")) for a in APPS)
    first_finalize = min(rows.index((a, "finalize", "started")) for a in APPS)
    warm = [rows.index(("*", "warm", st)) for st in ("started", "done")]
    assert last_verify < warm[0] < warm[1] < first_finalize
    assert rows[-1] == ("*", "run", "succeeded")
    assert rig.clock.elapsed == 30.0  # the warm delay, waited on the fake clock
    for app in APPS:
        epoch = result.epoch
        assert rig.calls(app) == [
            (app, "stage", ("green", "2.0.0", epoch)),
            (app, "switch", ("green", epoch)),
            (app, "stop_idle", ("blue", epoch)),
        ]
    assert rig.live() == dict.fromkeys(APPS, "2.0.0")
    effects = [k for k in rig.kinds(plan, "run.") if not k[0].endswith(".intent")]
    assert effects[0] == ("run.started", None) and effects[-1] == ("run.succeeded", None)
    for app in APPS:
        assert [k for k, a in effects if a == app] == ["run.stage", "run.switch", "run.finalize"]
    assert [a for k, a in rig.kinds(plan, "app.")] == list(APPS)  # app.switched, wave order


def test_a_first_deployment_has_nothing_to_keep_warm_or_stop(rig: Rig) -> None:
    rig.configure(with_targets(staging='warm = "30s"'))

    result = run_plan(rig.user(), rig.plan("1.0.0"))

    assert result.state == "succeeded"
    assert ("*", "warm", "started") not in journal(result)
    assert rig.clock.sleeps == []
    assert {c[1] for c in rig.calls()} == {"stage", "switch"}
    assert [s.detail for s in result.steps if s.step == "finalize" and s.state == "done"] == [
        "nothing to stop"
    ] * 3


def test_wave_two_starts_only_once_wave_one_is_verified(rig: Rig) -> None:
    rig.configure(with_targets(TWO_WAVES))
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    verified_at_stage: dict[str, bool] = {}

    def look(app: str, call: str, args: Any) -> None:
        if call == "stage" and app != "model-server":
            with rig.base.db.read() as conn:  # what is committed when the second wave stages
                rows = {(s.app, s.step, s.state) for s in steps_of(conn, plan)}
            verified_at_stage[app] = ("model-server", "verify", "done") in rows

    for t in rig.targets.by_app.values():
        t.before_call = look

    result = run_plan(rig.user(), plan)

    assert result.state == "succeeded"
    assert verified_at_stage == {"chat-api": True, "web": True}
    assert {s.wave for s in result.steps if s.app == "model-server" and s.step != "finalize"} == {0}
    assert {s.wave for s in result.steps if s.app in ("chat-api", "web") and s.step == "stage"} == {
        1
    }
    rows = journal(result)
    assert rows.index(("model-server", "verify", "done")) < min(
        rows.index((a, "stage", "started")) for a in ("chat-api", "web")
    )


def test_an_unhealthy_answer_is_asked_again_after_a_pause(rig: Rig) -> None:
    """Health is asked HEALTH_ATTEMPTS times, pausing between (on the fake clock): a release that
    comes up on the second answer passes."""
    plan = rig.plan("1.0.0", apps=["web"])
    rig.targets.factory("web", "staging", "local", {})
    web = rig.targets.by_app["web"]
    answers = iter([False, True])
    real_health = web.health

    def flaky(color: Any) -> Any:
        web.healthy = next(answers, True)
        return real_health(color)

    web.health = flaky  # type: ignore[method-assign]

    result = run_plan(rig.user(), plan)

    assert result.state == "succeeded"
    assert len(rig.clock.sleeps) == 1 < HEALTH_ATTEMPTS


def frozen_between_waves(rig: Rig) -> tuple[datetime, str]:
    """A two-wave plan and a two-minute freeze that begins ten minutes from now."""
    soon = rig.clock.now() + timedelta(minutes=10)
    freeze = (
        f'[freezes.soon]\nstart = "{soon.isoformat()}"\n'
        f'end = "{(soon + timedelta(minutes=2)).isoformat()}"\nreason = "incident review"\n\n'
    )
    rig.configure(freeze + with_targets(staging='freezes = ["soon"]'))
    return soon, rig.plan("1.0.0", apps=["model-server", "chat-api"])


def test_a_freeze_that_begins_mid_run_holds_the_next_wave_until_it_ends(rig: Rig) -> None:
    soon, plan = frozen_between_waves(rig)

    def progress(s: StepView) -> None:
        if (s.app, s.step, s.state) == ("model-server", "verify", "done"):
            rig.clock.advance(11 * 60)  # the freeze begins between the waves

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "succeeded"
    rows = journal(result)
    assert (
        rows.index(("model-server", "verify", "done"))
        < rows.index(("*", "hold", "started"))
        < rows.index(("*", "hold", "done"))
        < rows.index(("chat-api", "stage", "started"))
    )
    held = next(s.detail for s in result.steps if (s.step, s.state) == ("hold", "started"))
    assert "frozen by 'soon'" in held
    assert rig.clock.now() >= soon + timedelta(minutes=2)  # it waited the freeze out
    assert [k for k, _ in rig.kinds(plan, "run.held")] == ["run.held"]


def test_an_override_written_straight_into_the_table_does_not_release_a_held_wave(
    rig: Rig,
) -> None:
    """Someone with write access to the database inserts an override while the run is held by
    a freeze: it has no audit event, so the hold ignores it and waits the freeze out."""
    from sqlalchemy import insert

    from shipdeck.core.storage.tables import OVERRIDES

    soon, plan = frozen_between_waves(rig)

    def progress(s: StepView) -> None:
        if (s.app, s.step, s.state) == ("model-server", "verify", "done"):
            rig.clock.advance(11 * 60)  # the freeze begins between the waves
        if (s.step, s.state) == ("hold", "started"):
            with rig.base.db.write() as conn:
                conn.execute(insert(OVERRIDES).values(
                    plan_id=plan, by="mallory", reason="let me through", at=rig.clock.now(),
                    until=rig.clock.now() + timedelta(hours=1),
                ))  # fmt: skip

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "succeeded"
    assert rig.clock.now() >= soon + timedelta(minutes=2)  # held until the freeze ended
    assert [k for k, _ in rig.kinds(plan, "override.used")] == []
