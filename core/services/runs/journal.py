"""The run's step journal: run_step rows (and their audit events) written by one group-commit
writer thread in fenced transactions, and the engine's step: journal, run, journal.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, StaleEpoch
from shipdeck.core.services.plans import StepView
from shipdeck.core.services.runs.failpoints import failpoint
from shipdeck.core.services.runs.lease import Fenced, _LeaseHolder
from shipdeck.core.services.runs.state import _App, _StepFailed, _Stop
from shipdeck.core.storage import journal, runs
from shipdeck.core.storage.audit import NewEvent
from shipdeck.core.storage.db import Tx


@dataclass(frozen=True)
class _Row:
    wave: int
    app: str
    step: str
    state: str
    detail: str = ""
    extra: Callable[[Tx], None] | None = None
    # The audit event written with this row, in its transaction (kind, payload): an effect's
    # intent rides on its "started" row, the outcome (naming the intent) on "done"/"failed".
    event: tuple[str, dict[str, Any]] | None = None


_Written = tuple[int, _Row, int | None]  # journal row id, the row, its event's sequence


@dataclass(frozen=True)
class _Start:
    """A step about to run: its "started" row, and the intent (color, version) it announces if
    it changes the target (`facts` say more of what the intent is: a canary's weight)."""

    app: _App
    step: str
    detail: str = ""
    intent: tuple[Color | None, str | None] | None = None
    facts: dict[str, Any] | None = None


@dataclass
class _Batch:
    rows: list[_Row]
    starting: int  # how many of the last rows are steps about to start (withheld on an abort)
    exclusive: bool
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    written: list[_Written] = field(default_factory=list)
    stop_for: str | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _GroupCommit:
    """One writer thread for a run's journal: rows that apps of a wave submit at the same step
    boundary share one transaction and one commit, instead of queueing for the database lock
    (and, on PostgreSQL, for connections) one by one."""

    def __init__(self, write: Callable[[list[_Batch]], None], name: str) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, batch: _Batch) -> _Batch:
        self._queue.put(batch)
        batch.done.wait()
        return batch

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, closing = [first], False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                else:
                    group.append(more)
            try:
                self._write(group)
            finally:
                for b in group:
                    b.done.set()
            if closing:
                return


@dataclass
class _Journal:
    done: set[tuple[str, str]] = field(default_factory=set)
    prepared: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Journaled(_LeaseHolder):
    # --- journal ---------------------------------------------------------------------------

    def _read_journal(self, conn: Tx) -> _Journal:
        j = _Journal()
        for r in journal.of_plan(conn, self.plan_id):
            if r.state == "done":
                j.done.add((r.app, r.step))
                if r.step == "prepare":
                    j.prepared[r.app] = json.loads(r.detail)
        return j

    def _write(
        self,
        wave: int,
        app: str,
        step: str,
        state: str,
        detail: str = "",
        extra: Callable[[Tx], None] | None = None,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        self._commit([_Row(wave, app, step, state, detail, extra, event)])

    def _commit(
        self, rows: list[_Row], *, starting: int = 0, exclusive: bool = False
    ) -> list[_Written]:
        """Write journal rows (and their extras) in a fenced transaction, possibly shared with
        other apps' rows (group commit), and return once they are committed.

        The last `starting` rows are steps about to start: if an abort was requested, every row
        before them is still recorded, but they are not, and _Stop is raised.
        """
        batch = self._writer.submit(_Batch(rows, starting, exclusive))
        if batch.error is not None:
            if isinstance(batch.error, Fenced):
                raise Fenced(batch.error.message)
            raise batch.error
        for new_id, r, _seq in batch.written:
            if r.state == "done":
                self.journal.done.add((r.app, r.step))
            if self.progress is not None:
                self.progress(
                    StepView(new_id, self.epoch, r.wave, r.app, r.step, r.state, r.detail, batch.at)
                )
        if batch.stop_for:
            self.abort_seen = batch.stop_for
            self.stopping.set()
            raise _Stop()
        return batch.written

    def _write_group(self, group: list[_Batch]) -> None:
        """The writer thread's transaction for every batch that arrived together: their journal
        rows in one statement, then the events those rows carry in one append, then each row's
        extra (the deployment of a switch, ...) with the events of its own."""
        try:
            with self.ctx.db.write() as conn:
                self._fence(conn, any(b.exclusive for b in group))
                rows = self._kept(conn, group)
                now = self.ctx.now()
                for b in group:
                    b.at = now
                ids = journal.add_all(conn, [
                    journal.Step(self.plan_id, self.epoch, r.wave, r.app, r.step, r.state,
                                 r.detail, now)
                    for _b, r in rows
                ])  # fmt: skip
                events = [(n, r.app, r.event) for n, (_b, r) in enumerate(rows) if r.event]
                seqs = self.ctx.audit_all(conn, [
                    NewEvent(kind, payload, app=app, env=self.env, plan=self.plan_id)
                    for _n, app, (kind, payload) in events
                ])  # fmt: skip
                seq_of = {n: seq for (n, _a, _e), seq in zip(events, seqs, strict=True)}
                for n, ((b, r), new_id) in enumerate(zip(rows, ids, strict=True)):
                    failpoint("in", r.step, r.app)  # inside the fenced transaction
                    if r.extra is not None:
                        r.extra(conn)
                    b.written.append((new_id, r, seq_of.get(n)))
        except BaseException as exc:  # handed to every waiting caller: nothing was written
            for b in group:
                b.error, b.written, b.stop_for = exc, [], None

    def _kept(self, conn: Tx, group: list[_Batch]) -> list[tuple[_Batch, _Row]]:
        """The group's rows to write, in order: a batch's steps about to start are withheld
        (and the batch told to stop) when an abort was requested."""
        abort_by = None
        if any(b.starting for b in group):
            abort_by = runs.abort_requested_by(conn, self.plan_id)
        kept = []
        for b in group:
            rows = b.rows
            if b.starting and abort_by:
                rows, b.stop_for = rows[: -b.starting], abort_by
            kept += [(b, r) for r in rows]
        return kept

    def _pending_rows(self, app: str) -> list[_Row]:
        row = self._pending.pop(app, None)
        return [row] if row is not None else []

    def _check_boundary(self) -> None:
        if self.lost.is_set():
            raise Fenced(f"plan {self.plan_id}: lost the {self.env} lease")
        if self.stopping.is_set():
            raise _Stop()
        with self.ctx.db.read() as conn:
            by = runs.abort_requested_by(conn, self.plan_id)
        if by:
            self.abort_seen = by
            self.stopping.set()
            raise _Stop()

    def _intent(self, s: _Start) -> tuple[str, dict[str, Any]] | None:
        """The `run.STEP.intent` event a target-changing step's "started" row carries."""
        if s.intent is None:
            return None
        color, version = s.intent
        body = {"app": s.app.name, "color": color, "version": version, **(s.facts or {})}
        return f"run.{s.step}.intent", {**body, "epoch": self.epoch}

    def _start(self, starts: Sequence[_Start], *, boundary: bool) -> dict[str, int | None]:
        """Journal the "started" rows of steps about to run (each with its intent), after the
        "done" rows their apps had waiting, in one transaction; per app, its intent's sequence.

        The first step of a wave's apps (and finalize's) starts here for all of them at once:
        every intent commits before any of their targets is called, in one transaction instead
        of one each, so the apps begin together instead of one commit after another. With
        `boundary`, a lost lease, a failed app or an abort stops here instead (_Stop, Fenced).
        """
        if not starts:
            return {}
        earlier = [r for s in starts for r in self._pending_rows(s.app.name)]
        if boundary:
            if self.lost.is_set():
                raise Fenced(f"plan {self.plan_id}: lost the {self.env} lease")
            if self.stopping.is_set():
                if earlier:
                    self._commit(earlier)
                raise _Stop()
        started = [
            _Row(s.app.wave, s.app.name, s.step, "started", s.detail, event=self._intent(s))
            for s in starts
        ]
        written = self._commit([*earlier, *started], starting=len(started) if boundary else 0)
        return {r.app: seq for _id, r, seq in written[len(earlier) :]}

    def _step(
        self,
        a: _App,
        step: str,
        action: Callable[[], str | None],
        *,
        detail: str = "",
        on_done: Callable[[Tx], None] | None = None,
        on_fail: Callable[[Tx], None] | None = None,
        boundary: bool = True,
        defer: bool = False,
        intent: tuple[Color | None, str | None] | None = None,
        evidence: dict[str, Any] | None = None,
        repeat: bool = False,
        intent_facts: dict[str, Any] | None = None,
        begun: Mapping[str, int | None] | None = None,
    ) -> None:
        """Journal, run and journal one step. With `defer`, its "done" row is written together
        with the app's next "started" row (one transaction per step boundary, not two).

        A step that changes the target names the `intent` (color, version): its "started" row
        carries the `run.STEP.intent` event, so the target is only called once the intent has
        committed, and its "done"/"failed" row carries the outcome naming it (`intent_seq`).
        What the action puts in `evidence` joins that outcome's payload, done or failed.
        `intent_facts` say more of what the intent is (a canary's weight). A `repeat` step (each
        weight of a canary) runs however often it was done before. `begun`: the step was
        started already, with other apps' (`_start`), and these are the intents' sequences.
        """
        if (a.name, step) in self.journal.done and not repeat:
            return
        if begun is None:
            begun = self._start([_Start(a, step, detail, intent, intent_facts)], boundary=boundary)
        intent_seq = begun[a.name]
        failpoint("before", step, a.name)
        try:
            note = action()
        except StaleEpoch as exc:  # the intent stays open: the new lease holder closes it
            self.lost.set()
            raise Fenced(f"plan {self.plan_id}: {exc.message}") from None
        except AdapterError as exc:
            facts = {**(evidence or {}), "error": exc.message}
            failed = self._outcome(step, intent_seq, "failed", **facts)
            self._write(a.wave, a.name, step, "failed", exc.message, on_fail, failed)
            raise _StepFailed(a.name, step, exc.message) from None
        failpoint("after", step, a.name)
        outcome = self._outcome(step, intent_seq, "done", **(evidence or {}), result=note or detail)
        done = _Row(a.wave, a.name, step, "done", note or detail, on_done, outcome)
        if defer:
            self._pending[a.name] = done
        else:
            self._commit([done])

    def _outcome(
        self, step: str, intent_seq: int | None, state: str, **facts: Any
    ) -> tuple[str, dict[str, Any]] | None:
        """The outcome event of an effect step (none for a step that announced no intent)."""
        if intent_seq is None:
            return None
        kind = f"run.{step}" if state == "done" else f"run.{step}.{state}"
        return kind, {**facts, "epoch": self.epoch, "intent_seq": intent_seq}
