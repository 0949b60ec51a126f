"""The demo's past weeks, replayed through the services a person would use: releases cut every
few commits and plans shipping them, in time order, by the demo users, with a clock walked
through the past, so the audit log it leaves verifies like any other."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from shipdeck.core.demo.content import APPS, write_artifact
from shipdeck.core.services.context import Context, resolve_actor

COMMIT_EVERY = timedelta(hours=61)  # the demo repositories' pace (make_repo's step)
# (day after the start, environment) of each plan the history runs
SHIPS = (
    (6, "staging"),
    (7, "prod"),
    (13.5, "staging"),
    (14.5, "prod"),
    (21, "staging"),
    (23.5, "staging"),
    (24.5, "prod"),
    (29, "staging"),
)


class DemoClock:
    """The demo walks this clock through the past so its history has believable dates; while a
    plan runs it ticks, so its steps take believable time too."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.tick = timedelta(0)

    def now(self) -> datetime:
        at = self.at
        self.at += self.tick
        return at

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # the demo's targets are real processes: their waits are real


def as_user(ctx: Context, user: str, clock: DemoClock) -> Context:
    actor = resolve_actor(ctx.config, {**os.environ, "SHIPDECK_ACTOR": user})
    return replace(ctx, actor=actor, clock=clock)


class History:
    """Timed events (cut a release, ship an environment), replayed in time order; at the same
    instant releases come before plans, and otherwise the order they were scheduled in."""

    def __init__(
        self, root: Path, base: Context, start: datetime, progress: Callable[[str], None]
    ) -> None:
        self.root = root
        self.base = base
        self.progress = progress
        self.clock = DemoClock(start)
        self.events: list[tuple[datetime, int, Callable[[], None]]] = []
        self.cut_so_far: dict[str, list[str]] = {}

    def user(self, name: str) -> Context:
        return as_user(self.base, name, self.clock)

    def release_at(
        self,
        at: datetime,
        app: str,
        version: str,
        commit: str,
        notes: str,
        by: str,
        config: dict[str, object] | None = None,
    ) -> None:
        def cut() -> None:
            from shipdeck.core.services.releases import create_release

            self.clock.at = at
            earlier = self.cut_so_far.setdefault(app, [])
            artifacts = write_artifact(self.root, app, version, len(earlier))
            earlier.append(version)
            create_release(
                self.user(by), app, version, commit=commit, notes=notes, config=config,
                artifacts=artifacts,
            )  # fmt: skip

        self.events.append((at, 0, cut))

    def ship_at(self, at: datetime, env: str, run: bool = True) -> None:
        self.events.append((at, 1, lambda: self._ship(env, run)))

    def replay(self) -> None:
        for at, _, event in sorted(self.events, key=lambda e: (e[0], e[1])):
            self.clock.at = at
            event()

    def _ship(self, env: str, run: bool) -> None:
        """Plan what the previous env runs (or the latest releases), approve, tick, run."""
        from shipdeck.core.services.plans import approve, check_item, create_plan
        from shipdeck.core.services.runs import run_plan

        alice = self.user("alice")
        plan = create_plan(alice, env, self._behind(alice, env))
        for approver in ("bob", "carol")[: plan.approvals_required]:
            self.clock.at += timedelta(minutes=20)
            if not run and approver == "carol":
                break
            approve(self.user(approver), plan.id, "reviewed the diff")
        for item in plan.checklist[: len(plan.checklist) if run else 1]:
            check_item(alice, plan.id, item.item)
        if not run:
            self.progress(f"  {env}: plan {plan.id} waits for a second approval")
            return
        self._step_past_windows(alice, plan.id)
        self.clock.tick = timedelta(seconds=1)
        result = run_plan(alice, plan.id)
        self.clock.tick = timedelta(0)
        self.progress(f"  {env}: {result.state.replace('_', ' ')}: {result.result}")

    @staticmethod
    def _behind(alice: Context, env: str) -> list[str]:
        """APP@VERSION for each app whose release in the previous environment is not live here."""
        from shipdeck.core.services.status import status

        items: list[str] = []
        previous = alice.config.previous_env(env)
        if previous is not None:
            for a in status(alice):
                cells = {c.env: c for c in a.cells}
                want, have = cells[previous].deployed, cells[env].deployed
                if want is not None and (have is None or have.version != want.version):
                    items.append(f"{a.app}@{want.version}")
        return items

    def _step_past_windows(self, alice: Context, plan_id: str) -> None:
        """Wait out a deny window or freeze, as a release manager would (up to a day)."""
        from shipdeck.core.services.plans import get_plan

        for _ in range(8):
            if not any(
                b.kind in ("window_closed", "frozen") for b in get_plan(alice, plan_id).blockers
            ):
                break
            self.clock.at += timedelta(hours=3)


def schedule(history: History, start: datetime, shas: dict[str, list[str]]) -> None:
    """The demo's story. Releases are cut every few commits (by the release manager or a
    developer) and plans ship them. chat-api 1.3.0 fails its health check in staging and is
    rolled back; 1.3.1 fixes it. Prod ends one release behind, with a plan for the latest
    releases waiting for its second approval."""
    for app in APPS:
        _schedule_releases(history, start, app.name, app.subjects, shas[app.name])
    for day, env in SHIPS:
        history.ship_at(start + timedelta(days=day), env)
    history.ship_at(start + timedelta(days=29.5), "prod", run=False)
    # New weights on the same code, not shipped anywhere yet: status shows "model changed".
    history.release_at(
        start + timedelta(days=29.7), "model-server", "1.5.0", shas["model-server"][-1],
        "Retrained weights (same code)", "alice",
    )  # fmt: skip


def _schedule_releases(
    history: History, start: datetime, app: str, subjects: tuple[str, ...], commits: list[str]
) -> None:
    """1.N.0 on every third commit, alternating alice and dave, and one on the last commit."""
    n = 0
    for n, idx in enumerate(range(2, len(commits), 3), start=1):
        broken = app == "chat-api" and n == 3
        history.release_at(
            start + COMMIT_EVERY * idx + timedelta(hours=2), app, f"1.{n}.0", commits[idx],
            f"{subjects[idx]} and more" + (" (health check regression)" if broken else ""),
            "alice" if n % 2 else "dave", {"demo_health": "fail"} if broken else None,
        )  # fmt: skip
        if broken:
            history.release_at(
                start + COMMIT_EVERY * (idx + 1) + timedelta(hours=2), app, "1.3.1",
                commits[idx + 1], "Fix health check regression", "alice",
            )  # fmt: skip
    if (len(commits) - 1) % 3 != 2:
        history.release_at(
            start + COMMIT_EVERY * (len(commits) - 1) + timedelta(hours=3), app, f"1.{n + 1}.0",
            commits[-1], "latest", "alice",
        )  # fmt: skip
