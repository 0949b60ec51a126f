"""The engine's way forward: release specs, prepare, then per app stage, health, eval (where
the target has a gate), the canary's steps (where it ships as one), switch and verify, wave after wave (a closed window holds the next), warm, and finalize.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from shipdeck.core.domain.policy import OverrideFact as _OverrideFact
from shipdeck.core.domain.policy import active_override
from shipdeck.core.domain.windows import WindowState, describe_next
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import ReleaseSpec, ResolvedArtifact, other_color
from shipdeck.core.services.plans import env_window, window_tz
from shipdeck.core.services.releases import proven_releases
from shipdeck.core.services.runs.canary import _Canarying
from shipdeck.core.services.runs.eval_gate import EvalRun, live_baseline
from shipdeck.core.services.runs.failpoints import failpoint
from shipdeck.core.services.runs.journal import _Start
from shipdeck.core.services.runs.lease import Fenced
from shipdeck.core.services.runs.state import (
    HEALTH_ATTEMPTS,
    HEALTH_PAUSE,
    HOLD_POLL,
    MAX_PARALLEL,
    PLAN_LEVEL,
    _App,
    _StepFailed,
    _Stop,
)
from shipdeck.core.storage import journal, runs
from shipdeck.core.storage import overrides as stored_overrides
from shipdeck.core.storage.db import Tx


class _Shipping(_Canarying):
    # --- release specs ---------------------------------------------------------------------

    def _spec(self, release_id: int) -> ReleaseSpec:
        """The release as a target sees it; all of the plan's are read in one query up front."""
        if release_id not in self._specs:
            ids = {release_id, *(a.item.release_id for a in self.apps.values())}
            with self.ctx.db.read() as conn:
                proven = proven_releases(conn, ids)
            for rec in proven:
                m = rec.manifest
                arts = tuple(
                    ResolvedArtifact(e.name, e.uri, e.resolved or e.uri, e.digest or "")
                    for e in m.artifacts
                )
                self._specs[rec.id] = ReleaseSpec(
                    m.app, m.version, m.commit, rec.digest, dict(m.config), arts
                )
        return self._specs[release_id]

    # --- phases ----------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Record where each app starts (live color and release) before anything changes."""
        if self.apps:
            self._spec(next(iter(self.apps.values())).item.release_id)
        fresh: list[dict[str, Any]] = []
        with self.ctx.db.read() as conn:
            from shipdeck.core.services.status import live_deployments

            live = live_deployments(conn, list(self.apps))
        for a in self.apps.values():
            if a.name in self.journal.prepared:
                p = self.journal.prepared[a.name]
            else:
                color = a.target.live_color()
                dep = live.get((a.name, self.env))
                p = {
                    "from_color": color,
                    "from_version": a.target.staged_version(color) if color else None,
                    "from_release_id": dep.release_id if dep is not None else None,
                    "to_color": other_color(color),
                    "version": a.item.version,
                }
                fresh.append({"app": a.name, "wave": a.wave, **p})
            a.from_color = p["from_color"]
            a.from_version = p["from_version"]
            a.from_release_id = p["from_release_id"]
            a.to_color = p["to_color"]
            a.prepared = True
        if fresh:
            now = self.ctx.now()
            with self.ctx.db.write() as conn:
                self._fence(conn)
                journal.add_all(conn, [
                    journal.Step(
                        self.plan_id, self.epoch, f["wave"], f["app"], "prepare", "done",
                        json.dumps({k: v for k, v in f.items() if k not in ("app", "wave")}), now,
                    )
                    for f in fresh
                ])  # fmt: skip
            for f in fresh:
                self.journal.done.add((f["app"], "prepare"))
                self.journal.prepared[f["app"]] = f

    def _healthy(self, a: _App, attempts: int) -> str:
        detail = ""
        for n in range(attempts):
            h = a.target.health(a.to_color)
            if h.ok and (h.version is None or h.version == a.item.version):
                return f"{a.to_color} healthy: {h.detail}"
            detail = h.detail
            if h.ok:
                detail = f"serves {h.version!r}, expected {a.item.version!r}"
            if n + 1 < attempts:
                self.ctx.clock.sleep(HEALTH_PAUSE)
        raise AdapterError(f"{a.name} {a.item.version} on {a.to_color} is unhealthy: {detail}")

    def _checker(self, a: _App) -> Callable[[], str]:
        return lambda: self._healthy(a, 1)

    def _deployment(self, a: _App, outcome: str, now: datetime) -> runs.NewDeployment:
        """The deployment row this run records for `a`: its switch or its failure."""
        return runs.NewDeployment(
            app=a.name, env=self.env, release_id=a.item.release_id, version=a.item.version,
            commit=a.item.commit, digest=a.item.digest, color=a.to_color, at=now,
            by=self.ctx.actor.name, plan_id=self.plan_id,
            kind="rollback" if self.body.kind == "rollback" else "deploy", outcome=outcome,
            ended_at=now if outcome == "failed" else None,
        )  # fmt: skip

    def _record_switch(self, a: _App) -> Callable[[Tx], None]:
        def extra(conn: Tx) -> None:
            if runs.recorded(conn, self.plan_id, a.name, self.env):
                return
            now = self.ctx.now()
            deployment = self._deployment(a, "succeeded", now)
            binds = [runs.record(conn, deployment)]
            replaced = self.body.replaces.get(a.name)
            if replaced is not None and runs.is_succeeded(conn, replaced):
                binds.append(runs.roll_back(conn, replaced, now))
            self.ctx.audit(
                conn,
                "app.switched",
                {"from_color": a.from_color, "to_color": a.to_color, "from_version": a.from_version,
                 "version": a.item.version, "epoch": self.epoch, "kind": deployment.kind},
                app=a.name, env=self.env, plan=self.plan_id, binds=binds,
            )  # fmt: skip

        return extra

    def _record_failed(self, a: _App) -> Callable[[Tx], None]:
        def extra(conn: Tx) -> None:
            failed = runs.record(conn, self._deployment(a, "failed", self.ctx.now()))
            self.ctx.audit(
                conn, "app.failed", {"version": a.item.version, "color": a.to_color},
                app=a.name, env=self.env, plan=self.plan_id, binds=[failed],
            )  # fmt: skip

        return extra

    def _staging(self, a: _App) -> _Start:
        """Stage's "started" row and intent: the wave starts it for all of its apps at once."""
        return _Start(a, "stage", f"{a.item.version} on {a.to_color}", (a.to_color, a.item.version))

    def _ship(self, a: _App, begun: Mapping[str, int | None]) -> None:
        spec = self._spec(a.item.release_id)
        where = f"{a.item.version} on {a.to_color}"
        self._step(
            a, "stage", lambda: a.target.stage(a.to_color, spec, self.epoch), detail=where,
            on_fail=self._record_failed(a), defer=True, begun=begun,
        )  # fmt: skip
        self._step(
            a, "health", lambda: self._healthy(a, HEALTH_ATTEMPTS), detail=where,
            on_fail=self._record_failed(a), defer=True,
        )  # fmt: skip
        self._evaluate(a, spec)
        canary = self.ctx.config.canary(a.name, self.env, self.body.kind)
        # A first deployment switches at once: no color is live, or nothing runs on the one
        # the switch names (nginx's include names a server before anything was deployed).
        if canary is not None and a.from_version is not None:
            self._walk_canary(a, canary)
        self._step(
            a, "switch", lambda: a.target.switch(a.to_color, self.epoch),
            detail=f"{a.from_color or 'nothing'} -> {a.to_color}", on_done=self._record_switch(a),
            defer=True, intent=(a.to_color, a.item.version),
        )  # fmt: skip
        self._step(a, "verify", self._checker(a), detail=where)

    def _evaluate(self, a: _App, spec: ReleaseSpec) -> None:
        """The app's eval gate on its staged color, if this environment's target has one (a
        rollback plan is not held to it: it restores what was live before)."""
        gate_cfg = self.ctx.config.eval_gate(a.name, self.env, self.body.kind)
        if gate_cfg is None:
            return
        baseline = live_baseline(self.ctx, a.name, self.env, a.from_release_id)
        gate = EvalRun(
            self.ctx, self.env, gate_cfg, a.target, a.to_color, spec, a.item.release_id, baseline
        )
        evidence: dict[str, Any] = {}
        self._step(
            a, "eval", lambda: gate(evidence), detail=f"{a.item.version} on {a.to_color}",
            on_fail=self._record_failed(a), defer=True, intent=(a.to_color, a.item.version),
            evidence=evidence,
        )  # fmt: skip

    def _hold(self, wave: int) -> None:
        """Between waves: a window that closed mid-run holds the next wave until it reopens."""
        held = False
        window: WindowState | None = None
        while True:
            now = self.ctx.now()
            # The window's answer holds until its next opening: ask again only then.
            if window is None or (window.next_open is not None and now >= window.next_open):
                window = env_window(self.ctx, self.env, now)
            with self.ctx.db.read() as conn:  # only overrides their events vouch for
                proven, _ = stored_overrides.proven_of_plan(conn, self.plan_id)
            overrides = [_OverrideFact(o.id, o.by, o.reason, o.until) for o in proven]
            if window.open or active_override(overrides, now) is not None:
                if held:
                    self._write(wave, PLAN_LEVEL, "hold", "done", "window open again")
                return
            if not held:
                why = (
                    f"{window.reason}; {describe_next(window, window_tz(self.ctx, self.env), now)}"
                )

                def audit_hold(conn: Tx, why: str = why) -> None:
                    self.ctx.audit(
                        conn, "run.held", {"wave": wave, "reason": why},
                        env=self.env, plan=self.plan_id,
                    )  # fmt: skip

                self._write(wave, PLAN_LEVEL, "hold", "started", why, audit_hold)
                held = True
            self._check_boundary()
            self.ctx.clock.sleep(HOLD_POLL)

    def _wave(self, wave: int, names: Sequence[str]) -> None:
        apps = [self.apps[n] for n in names]
        failures: list[BaseException] = []
        starts = [self._staging(a) for a in apps if (a.name, "stage") not in self.journal.done]
        begun = self._start(starts, boundary=True)

        def one(a: _App) -> None:
            try:
                self._ship(a, begun)
            except BaseException as exc:
                self.stopping.set()
                failures.append(exc)

        if len(apps) == 1:
            one(apps[0])
        else:
            with ThreadPoolExecutor(max_workers=min(len(apps), MAX_PARALLEL)) as pool:
                list(pool.map(one, apps))
        for exc in failures:  # fenced first, then real failures, then stops
            if isinstance(exc, Fenced):
                raise exc
        for exc in failures:
            if not isinstance(exc, _Stop):
                raise exc
        if failures:
            raise failures[0]

    def _warm(self) -> None:
        """Keep the old colors running for the env's `warm` delay, health-checking the new ones:
        a release that goes bad now still rolls back instantly. Nothing old, nothing to keep."""
        warm = 0.0 if self.envcfg is None else self.envcfg.warm_seconds
        seconds = 0.0 if self.body.kind == "rollback" else warm
        nothing_old = all(a.from_color is None for a in self.apps.values())
        if seconds <= 0 or nothing_old or (PLAN_LEVEL, "warm") in self.journal.done:
            return
        wave = len(self.body.waves)
        self._check_boundary()
        self._write(wave, PLAN_LEVEL, "warm", "started", f"old colors stay warm for {seconds:g}s")
        failpoint("before", "warm", PLAN_LEVEL)
        clock = self.ctx.clock
        deadline = clock.monotonic() + seconds
        while (left := deadline - clock.monotonic()) > 0:
            clock.sleep(min(left, 1.0))
            self._check_boundary()
            for a in self.apps.values():
                h = a.target.health(a.to_color)
                if not h.ok:
                    msg = f"{a.name} {a.item.version} went unhealthy while warm: {h.detail}"
                    self._write(wave, a.name, "warm", "failed", msg)
                    raise _StepFailed(a.name, "warm", msg)
        failpoint("after", "warm", PLAN_LEVEL)
        self._write(wave, PLAN_LEVEL, "warm", "done", f"{seconds:g}s without a failed check")

    def _finalize(self) -> None:
        """Stop every app's old color: all of their intents in one transaction, then the stops
        side by side (each outcome as it comes)."""
        wave = len(self.body.waves)
        finals = [
            _App(a.name, wave, a.item, a.target, a.from_color, a.from_version,
                 a.from_release_id, a.to_color, True)
            for a in self.apps.values()
        ]  # fmt: skip
        old_colors = {
            a.name: a.from_color for a in finals if a.from_color not in (None, a.to_color)
        }
        intents = {a.name: (a.from_color, a.from_version) for a in finals if a.name in old_colors}
        starts = [
            _Start(a, "finalize", intent=intents.get(a.name))
            for a in finals
            if (a.name, "finalize") not in self.journal.done
        ]
        begun = self._start(starts, boundary=False)

        def one(a: _App) -> None:
            def stop_old() -> str:
                old = old_colors.get(a.name)
                if old is None:
                    return "nothing to stop"
                if a.target.live_color() == old:
                    raise AdapterError(f"{a.name}: {old} is live again, not stopping it")
                a.target.stop_idle(old, self.epoch)
                return f"stopped {old}"

            self._step(a, "finalize", stop_old, boundary=False, begun=begun)

        with ThreadPoolExecutor(max_workers=min(max(len(finals), 1), MAX_PARALLEL)) as pool:
            for f in [pool.submit(one, a) for a in finals]:
                f.result()
