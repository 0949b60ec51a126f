"""The wave engine: _Engine runs a started plan (run) or takes over an interrupted one (recover).

Its parts live beside it, each a layer of the class: lease (fence, heartbeat), journal (step
rows, group commit, the step), shipping (the phases forward), undo (rolling back).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from shipdeck.core.domain.plan import PlanBody, check_transition
from shipdeck.core.domain.run_end import final_event, interrupted_end
from shipdeck.core.errors import AdapterError, ConflictError
from shipdeck.core.ports import ReleaseSpec
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans import StepView, load_plan_row, steps_of, untargeted
from shipdeck.core.services.runs.journal import _GroupCommit, _Row
from shipdeck.core.services.runs.lease import Fenced, RunTicket
from shipdeck.core.services.runs.state import _EFFECT_KINDS, PLAN_LEVEL, _App, _StepFailed, _Stop
from shipdeck.core.services.runs.undo import _Undoing
from shipdeck.core.services.runs.views import RunResult
from shipdeck.core.storage import audit, leases, runs
from shipdeck.core.storage.db import Tx

# --- the engine ------------------------------------------------------------------------------


class _Engine(_Undoing):
    def __init__(
        self,
        ctx: Context,
        ticket: RunTicket,
        progress: Callable[[StepView], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.plan_id = ticket.plan_id
        self.epoch = ticket.epoch
        self.progress = progress
        with ctx.db.read() as conn:
            row = load_plan_row(conn, self.plan_id)
            journal = self._read_journal(conn)
        self.env = row.env
        self.author = row.created_by
        self.body = PlanBody.decode(row.body)
        # None when shipdeck.toml dropped the environment: every app is then drift (below).
        self.envcfg = ctx.config.environments.get(row.env)
        self.journal = journal
        self.lost = threading.Event()
        self.stopping = threading.Event()
        self.abort_seen: str | None = None
        self._heartbeat_stop = threading.Event()
        self._specs: dict[int, ReleaseSpec] = {}
        self._pending: dict[str, _Row] = {}  # per app: a "done" row waiting for the next step
        self.apps: dict[str, _App] = {}
        # Configuration drift (a target removed while the plan ran) fails the plan, audited,
        # in run() and recover(); an engine that could not start would leave it running.
        self.drift = untargeted(ctx, self.env, [a for wave in self.body.waves for a in wave])
        for wave_no, wave in enumerate(self.body.waves):
            for app in (a for a in wave if a not in self.drift):
                tcfg = ctx.config.apps[app].targets[self.env]
                target = ctx.targets(app, self.env, tcfg.adapter, tcfg.settings)
                self.apps[app] = _App(app, wave_no, self.body.item(app), target)
        self._writer = _GroupCommit(self._write_group, f"journal-{self.plan_id}")

    # --- finishing -------------------------------------------------------------------------

    def _finish(self, state: str, result: str, event: str) -> None:
        now = self.ctx.now()

        def extra(conn: Tx) -> None:
            row = load_plan_row(conn, self.plan_id, for_update=True)
            if row.state != state:
                check_transition(self.plan_id, row.state, state)
            finished = runs.end(conn, self.plan_id, state, now, result)
            leases.free(conn, self.env, self.epoch)
            self.ctx.audit(
                conn, event, {"from": row.state, "state": state, "result": result, "epoch": self.epoch},
                env=self.env, plan=self.plan_id, binds=[finished],
            )  # fmt: skip

        self._commit(
            [_Row(len(self.body.waves), PLAN_LEVEL, "run", state, result, extra)], exclusive=True
        )
        notify(
            self.ctx,
            {"succeeded": "run.succeeded", "rolled_back": "run.rolled_back"}.get(
                state, "run.failed"
            ),
            {"plan": self.plan_id, "env": self.env, "state": state, "result": result},
            env=self.env,
            plan=self.plan_id,
        )

    def _close_targets(self) -> None:
        for a in self.apps.values():
            try:
                a.target.close()
            except AdapterError:
                continue

    def run(self) -> RunResult:
        beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.plan_id}", daemon=True)
        beat.start()
        try:
            if self.drift:
                return self._fail_on_drift()
            self._prepare()
            try:
                for n, wave in enumerate(self.body.waves):
                    if n > 0:
                        self._hold(n)
                    self._wave(n, wave)
                self._warm()
                self._finalize()
            except _StepFailed as failure:
                self.stopping.set()
                state, result = self._after_failure(failure)
            except _Stop:
                state, result = self._after_failure(None)
            else:
                done = ", ".join(f"{a.name} {a.item.version}" for a in self.apps.values())
                state, result = "succeeded", f"{done} live in {self.env}"
            self._finish(state, result, final_event(state))
            return self.result(state, result)
        finally:
            self._heartbeat_stop.set()
            self._writer.close()
            self._close_targets()

    def recover(self) -> tuple[str, RunResult]:
        """Make recorded state equal real state, then finish the run or roll it back."""
        beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.plan_id}", daemon=True)
        beat.start()
        try:
            self._close_intents()
            if self.drift:
                return "failed", self._fail_on_drift()
            with self.ctx.db.read() as conn:
                self.abort_seen = runs.abort_requested_by(conn, self.plan_id)
            self._prepare()
            live_new = self._found_live()
            decision: str
            if not self.abort_seen and all(live_new.values()):
                try:
                    for a in self.apps.values():
                        # Checked now, whatever the stopped runner's journal says: its verify
                        # told how the app was then, finishing rests on how it is now.
                        self.journal.done.discard((a.name, "verify"))
                        self._step(a, "verify", self._checker(a), boundary=False)
                    self._finalize()
                    decision, state = "finished", "succeeded"
                    result = "reconciled: every app already served its new release; finished"
                except _StepFailed as failure:
                    state, result = self._after_failure(failure)
                    decision = "rolled_back" if state == "rolled_back" else "failed"
            else:
                decision, state, result = interrupted_end(self.abort_seen, self._roll_back())
            self._finish(state, result, final_event(state))
            return decision, self.result(state, result)
        finally:
            self._heartbeat_stop.set()
            self._writer.close()
            self._close_targets()

    def _found_live(self) -> dict[str, bool]:
        """Per app, whether it already serves its new release (live and staged on its new
        color); a switch that happened without its journal entry is recorded on the way."""
        live_new: dict[str, bool] = {}
        for a in self.apps.values():
            on_new = (
                a.target.live_color() == a.to_color
                and a.target.staged_version(a.to_color) == a.item.version
            )
            live_new[a.name] = on_new
            if on_new and (a.name, "switch") not in self.journal.done:
                # The switch happened but its journal entry did not: record what is real.
                self._write(a.wave, a.name, "switch", "done", "found live by reconcile",
                            self._record_switch(a))  # fmt: skip
        return live_new

    def _close_intents(self) -> None:
        """Close the effects a stopped runner announced but never recorded the end of: one
        `run.STEP.recovered` per open intent, naming it and saying what the target shows now.
        The old runner is fenced off (its target calls carry the stale epoch), so what is found
        here stays true; finishing or rolling back then goes under intents of its own."""
        with self.ctx.db.read() as conn:
            found = audit.open_intents_of(conn, self.plan_id, _EFFECT_KINDS)
        closing = []
        for ev in found:
            color = json.loads(ev.payload).get("color")
            facts: dict[str, Any] = {"intent_seq": ev.seq, "epoch": self.epoch, "color": color}
            a = self.apps.get(ev.app or "")
            if a is None:
                facts["found"] = f"not checked: shipdeck.toml has no {self.env} target for it"
            else:
                try:
                    live = a.target.live_color()
                    staged = a.target.staged_version(color) if color in ("blue", "green") else None
                except AdapterError as exc:
                    facts["found"] = f"not checked: {exc.message}"
                else:
                    facts.update(live_color=live, staged_version=staged)
                    facts["found"] = (
                        f"{live or 'no color'} live, {color} holds {staged or 'nothing'}"
                    )
            closing.append((ev.kind.removesuffix(".intent") + ".recovered", ev.app, facts))
        if not closing:
            return
        with self.ctx.db.write() as conn:
            self._fence(conn)
            for kind, app, facts in closing:
                self.ctx.audit(conn, kind, facts, app=app, env=self.env, plan=self.plan_id)

    def _fail_on_drift(self) -> RunResult:
        """Fail the plan, audited, without touching a target: shipdeck.toml no longer says
        where some of its apps live, so neither finishing nor rolling back can be trusted."""
        missing = ", ".join(self.drift)
        result = (
            f"configuration drift: shipdeck.toml has no {self.env} target for {missing} any more;"
            " failed without changing anything (restore the target, then deploy or roll back)"
        )
        self._finish("failed", result, "run.failed")
        return self.result("failed", result)

    def result(self, state: str, result: str) -> RunResult:
        with self.ctx.db.read() as conn:
            steps = tuple(steps_of(conn, self.plan_id))
        return RunResult(self.plan_id, self.env, state, result, self.epoch, steps)


def execute_run(
    ctx: Context, ticket: RunTicket, progress: Callable[[StepView], None] | None = None
) -> RunResult:
    """Run a started plan to its end in the calling thread; safe in a worker thread.

    Raises Fenced if the lease was lost mid-run (the plan's fate is then the new holder's).
    """
    with ctx.db.read() as conn:
        lease = leases.of_plan(conn, ticket.plan_id)
        row = load_plan_row(conn, ticket.plan_id)
    if lease is None or lease.epoch != ticket.epoch or row.state != "running":
        raise Fenced(f"plan {ticket.plan_id}: epoch {ticket.epoch} no longer holds the lease")
    if lease.holder != ctx.actor.name:
        raise ConflictError(f"plan {ticket.plan_id} is run by {lease.holder}, not {ctx.actor.name}")
    return _Engine(ctx, ticket, progress).run()
