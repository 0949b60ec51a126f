"""The engine's way back: undo what this run switched, app by app in reverse order, and what a
failure or an abort leads to (roll back or halt).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shipdeck.core.services.runs.shipping import _Shipping
from shipdeck.core.services.runs.state import MAX_PARALLEL, _App, _StepFailed
from shipdeck.core.storage import runs
from shipdeck.core.storage.db import Tx


class _Undoing(_Shipping):
    def _undo(self, a: _App) -> None:
        """Put the app back on what was live before this run (a canary's weight to 0 first);
        stop what this run staged."""

        def act() -> str:
            notes = []
            if a.target.live_color() == a.to_color and a.from_color != a.to_color:
                if a.from_color is None or a.from_release_id is None:
                    notes.append(f"nothing to roll back to: {a.item.version} stays live")
                else:
                    if a.target.staged_version(a.from_color) != a.from_version:
                        spec = self._spec(a.from_release_id)
                        a.target.stage(a.from_color, spec, self.epoch)
                        notes.append(f"redeployed {spec.version} on {a.from_color}")
                    a.target.switch(a.from_color, self.epoch)
                    notes.append(f"switched back to {a.from_color}")
            if a.target.live_color() != a.to_color and a.target.staged_version(a.to_color):
                a.target.stop_idle(a.to_color, self.epoch)
                notes.append(f"stopped {a.to_color}")
            return "; ".join(notes) or "nothing had changed"

        def mark(conn: Tx) -> None:
            if a.target.live_color() == a.to_color:
                return  # stayed live (first deployment): the record stays true
            now = self.ctx.now()
            changed = [
                runs.roll_back(conn, d, now) for d in runs.succeeded_of(conn, self.plan_id, a.name)
            ]
            if changed:
                self.ctx.audit(
                    conn, "app.rolled_back",
                    {"to_color": a.from_color, "version": a.from_version, "epoch": self.epoch},
                    app=a.name, env=self.env, plan=self.plan_id, binds=changed,
                )  # fmt: skip

        self._weight_back(a, "rolled back")
        self._step(
            a, "rollback", act, on_done=mark, boundary=False, intent=(a.from_color, a.from_version)
        )

    def _roll_back(self) -> list[str]:
        """Undo every app this run prepared, the last wave first, and the apps of one wave side
        by side, as they shipped: one after another, a 20-app canary's way back took a second
        longer than its verdict (bench/canary.py). Each app's step has its own intent, so the
        order within a wave is nothing recovery relies on."""
        problems: list[str] = []
        prepared = [a for a in self.apps.values() if a.prepared]
        for wave in sorted({a.wave for a in prepared}, reverse=True):
            apps = sorted((a for a in prepared if a.wave == wave), key=lambda a: a.name)[::-1]
            with ThreadPoolExecutor(max_workers=min(len(apps), MAX_PARALLEL)) as pool:
                problems += [p for p in pool.map(self._undo_or_why, apps) if p is not None]
        return problems

    def _undo_or_why(self, a: _App) -> str | None:
        """`_undo`, or why it failed: the rest of the wave is undone all the same."""
        try:
            self._undo(a)
        except _StepFailed as exc:
            return exc.message
        return None

    def _after_failure(self, failure: _StepFailed | None) -> tuple[str, str]:
        if failure is None or self.abort_seen:
            problems = self._roll_back()
            who = self.abort_seen or "someone"
            result = f"aborted by {who}; rolled back what this run had switched"
            if problems:
                result += f"; rollback problems: {'; '.join(problems)}"
            return "aborted", result
        what = f"{failure.app} failed at {failure.step}: {failure.message}"
        if self.body.failure_policy == "halt":
            return "failed", f"{what}; halted (failure policy halt), the rest is left as it is"
        problems = self._roll_back()
        if problems:
            return "failed", f"{what}; rollback failed: {'; '.join(problems)}"
        return "rolled_back", f"{what}; rolled back every app this run had switched"
