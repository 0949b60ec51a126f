"""Running plans: the environment lease, the blue/green engine, its journal, and recovery.

The shape of a run
- `start_run` checks policy and takes the environment's lease in ONE transaction: the lease row
  carries a fencing epoch that only ever increases, and every target call carries it, so a runner
  that stalled past its lease is refused by the targets themselves (StaleEpoch).
- The engine then ships wave after wave; apps of one wave run in parallel threads. Per app:
  stage the release on the idle color, pre-switch health check (a failure never switches),
  switch, post-switch verify. After the last wave the old colors stay warm for the environment's
  `warm` delay while the new ones keep being health-checked (a release that goes bad now is still
  rolled back instantly), then finalize stops the old colors.
- Every step is journaled (run_step rows) before and after it runs, in transactions that first
  check the lease epoch, so a fenced runner cannot write either. Viewers in other processes follow
  a run by polling those rows. Replaying a journal skips steps already done; every target call is
  idempotent, so a step that was in flight is simply done again.
- A failure rolls back (switch back every app this run switched, in reverse order) or halts,
  per the plan's failure policy. `abort` asks the runner to stop at the next step boundary and
  roll back.
- `reconcile` takes over runs whose lease expired (or whose runner process is provably dead),
  asks each target what is really live, records any switch the journal missed, and then finishes
  the run if every app already serves its new release and is healthy, or rolls it back.

Failpoints for crash tests: SHIPDECK_FAILPOINT="before:switch:chat-api" (phase:step:app[:action],
comma-separated, app may be "*") SIGKILLs this process at that point; action "stop" SIGSTOPs it
once instead (a stalled runner).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row

from shipdeck.core.domain.plan import PRE_RUN, PlanBody, PlanItem, check_transition, label
from shipdeck.core.domain.policy import LockFact as _LockFact
from shipdeck.core.domain.policy import OverrideFact as _OverrideFact
from shipdeck.core.domain.policy import active_override, lock_blockers
from shipdeck.core.domain.windows import WindowState, describe_next
from shipdeck.core.errors import (
    AdapterError,
    BlockedError,
    Blocker,
    ConflictError,
    ExitCode,
    OperationFailed,
    ShipdeckError,
    TimedOut,
)
from shipdeck.core.ports import (
    Color,
    ReleaseSpec,
    ResolvedArtifact,
    StaleEpoch,
    Target,
    other_color,
)
from shipdeck.core.services import runner_token
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import approvals_note
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans import (
    StepView,
    build_body,
    create_plan,
    env_config,
    env_window,
    insert_plan,
    lease_live,
    load_plan_row,
    new_row_id,
    runner_id,
    steps_of,
    untargeted,
    verdict,
    window_tz,
)
from shipdeck.core.services.releases import proven_release
from shipdeck.core.services.rollbacks import check_reason, check_target, choose
from shipdeck.core.storage import audit, binding
from shipdeck.core.storage.files import make_dirs, open_file
from shipdeck.core.storage.tables import DEPLOYMENTS, LEASES, OVERRIDES, PLANS, RELEASES, STEPS

PLAN_LEVEL = "*"  # run_step.app for steps of the whole plan (hold, warm)
# The intents of the steps that change a target, and every outcome that can close one
# (reconcile looks for the open ones).
_EFFECT_KINDS = tuple(
    f"run.{step}{end}"
    for step in ("stage", "switch", "finalize", "rollback")
    for end in (".intent", "", ".failed", ".recovered")
)
HEALTH_ATTEMPTS = 3
HEALTH_PAUSE = 0.5
HOLD_POLL = 1.0
MAX_PARALLEL = 64  # threads per wave; DB connections are held only for short writes


def lease_seconds() -> float:
    """How long a lease lasts without renewal (SHIPDECK_LEASE_SECONDS, default 15)."""
    try:
        return max(float(os.environ.get("SHIPDECK_LEASE_SECONDS", "15")), 0.5)
    except ValueError:
        return 15.0


class Fenced(OperationFailed):
    """This runner lost its lease (it stalled, and another took over): it must stop touching
    anything. Not a failure of the plan: the new lease holder decides how the plan ends."""

    kind = "fenced"


@dataclass(frozen=True)
class RunTicket:
    plan_id: str
    epoch: int


@dataclass(frozen=True)
class RunResult:
    plan_id: str
    env: str
    state: str
    result: str
    epoch: int | None
    steps: tuple[StepView, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.ok else ExitCode.FAILED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "env": self.env,
            "state": self.state,
            "result": self.result,
            "epoch": self.epoch,
            "steps": [s.as_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class ReconcileResult:
    plan_id: str
    env: str
    decision: str  # finished | rolled_back | aborted | failed | skipped
    state: str
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "env": self.env,
            "decision": self.decision,
            "state": self.state,
            "result": self.result,
        }


# --- failpoints ------------------------------------------------------------------------------

_stopped_once: set[str] = set()


def failpoint(phase: str, step: str, app: str) -> None:
    spec = os.environ.get("SHIPDECK_FAILPOINT")
    if not spec:
        return
    for part in spec.split(","):
        bits = part.strip().split(":")
        if len(bits) < 2:
            continue
        want_app = bits[2] if len(bits) > 2 else "*"
        action = bits[3] if len(bits) > 3 else "kill"
        if bits[0] != phase or bits[1] != step or want_app not in ("*", app):
            continue
        if action == "stop":
            if part in _stopped_once:
                continue
            _stopped_once.add(part)
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            os.kill(os.getpid(), signal.SIGKILL)


def _succeeded(conn: Connection, where: Sequence[Any]) -> list[int]:
    """The ids of the succeeded deployments matching `where`: the rows a switch or a rollback
    ends (each is then changed, and rebound, one by one)."""
    return list(
        conn.execute(
            select(DEPLOYMENTS.c.id).where(*where, DEPLOYMENTS.c.outcome == "succeeded")
        ).scalars()
    )


# --- the lease -------------------------------------------------------------------------------


def lock_lease(conn: Connection, env: str) -> Row[Any]:
    """The env's lease row, created if missing, locked until the transaction ends."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        ins(LEASES).values(env=env, epoch=0).on_conflict_do_nothing(index_elements=["env"])
    )
    return conn.execute(select(LEASES).where(LEASES.c.env == env).with_for_update()).one()


def _take_lease(ctx: Context, conn: Connection, lease: Row[Any], plan_id: str) -> int:
    epoch = int(lease.epoch) + 1
    now = ctx.now()
    conn.execute(
        update(LEASES)
        .where(LEASES.c.env == lease.env)
        .values(
            epoch=epoch,
            holder=ctx.actor.name,
            plan_id=plan_id,
            since=now,
            expires_at=now + timedelta(seconds=lease_seconds()),
            runner=runner_id(),
        )
    )
    return epoch


def _locked(env: str, lease: Row[Any]) -> BlockedError:
    blockers = lock_blockers("", env, _LockFact(lease.holder, lease.plan_id, lease.since))
    return BlockedError(blockers[0].message, blockers=blockers)


def claim_runner(ctx: Context, ticket: RunTicket, pid: int) -> None:
    """Hand the lease to the detached runner process `pid` (dead-runner detection follows it)."""
    with ctx.db.write() as conn:
        conn.execute(
            update(LEASES)
            .where(LEASES.c.epoch == ticket.epoch, LEASES.c.plan_id == ticket.plan_id)
            .values(runner=runner_id(pid))
        )


# --- starting --------------------------------------------------------------------------------


def start_run(ctx: Context, plan_id: str) -> RunTicket:
    """Check policy and take the environment's lease, atomically; the plan becomes running.

    Raises BlockedError (exit 3) with every blocker, including `locked` naming the holder when
    another run holds the environment. Interrupted runs found on the way are reconciled first.
    """
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("deploy" if row.kind == "deploy" else "plan.run", env=row.env, plan=plan_id)
    reconcile(ctx, env=row.env, auto=True)
    with ctx.db.write() as conn:
        lease = lock_lease(conn, row.env)
        row = load_plan_row(conn, plan_id, for_update=True)
        if lease_live(lease, ctx.now()):
            raise _locked(row.env, lease)
        if row.state not in ("awaiting_approval", "approved"):
            check_transition(plan_id, row.state, "running")
        v = verdict(ctx, conn, row)
        if v.blockers:
            first = v.blockers[0].message
            more = f" (and {len(v.blockers) - 1} more)" if len(v.blockers) > 1 else ""
            raise BlockedError(
                f"plan {plan_id} may not run: {first}{more}", blockers=list(v.blockers)
            )
        epoch = _take_lease(ctx, conn, lease, plan_id)
        now = ctx.now()
        started = binding.change(
            conn,
            PLANS,
            {"id": plan_id},
            state="running",
            started_at=now,
            finished_at=None,
            run_epoch=epoch,
            digest=v.digest,
            abort_requested_by=None,
            result="",
            updated_at=now,
        )
        used = active_override(v.overrides, now)
        ctx.audit(
            conn,
            "run.started",
            {
                "epoch": epoch,
                "digest": v.digest,
                "from": row.state,
                "state": "running",
                "waves": [list(w) for w in v.body.waves],
                "override": used.id if used else None,
                "window_open": v.window.open,
            },
            env=row.env,
            plan=plan_id,
            binds=[started],
        )
    notify(ctx, "run.started", {"plan": plan_id, "env": row.env}, env=row.env, plan=plan_id)
    return RunTicket(plan_id, epoch)


def run_plan(
    ctx: Context, plan_id: str, progress: Callable[[StepView], None] | None = None
) -> RunResult:
    """Start and execute the plan in the calling thread (a TUI worker, a test, the runner)."""
    return execute_run(ctx, start_run(ctx, plan_id), progress)


# --- the engine ------------------------------------------------------------------------------


class _StepFailed(Exception):
    def __init__(self, app: str, step: str, message: str) -> None:
        super().__init__(message)
        self.app = app
        self.step = step
        self.message = message


class _Stop(Exception):
    """Another app of the wave failed, or an abort was requested: stop at this boundary."""


@dataclass
class _App:
    name: str
    wave: int
    item: PlanItem
    target: Target
    from_color: Color | None = None
    from_version: str | None = None
    from_release_id: int | None = None
    to_color: Color = "blue"
    prepared: bool = False


@dataclass(frozen=True)
class _Row:
    wave: int
    app: str
    step: str
    state: str
    detail: str = ""
    extra: Callable[[Connection], None] | None = None
    # The audit event written with this row, in its transaction (kind, payload): an effect's
    # intent rides on its "started" row, the outcome (naming the intent) on "done"/"failed".
    event: tuple[str, dict[str, Any]] | None = None


_Written = tuple[int, _Row, int | None]  # journal row id, the row, its event's sequence


@dataclass
class _Batch:
    rows: list[_Row]
    check_abort: bool
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


class _Engine:
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

    # --- journal ---------------------------------------------------------------------------

    def _read_journal(self, conn: Connection) -> _Journal:
        j = _Journal()
        for r in conn.execute(
            select(STEPS).where(STEPS.c.plan_id == self.plan_id).order_by(STEPS.c.id)
        ):
            if r.state == "done":
                j.done.add((r.app, r.step))
                if r.step == "prepare":
                    j.prepared[r.app] = json.loads(r.detail)
        return j

    def _fence(self, conn: Connection, exclusive: bool = False) -> None:
        """Refuse (Fenced) unless this run still holds the lease at its epoch, and keep it so
        until the transaction ends: a shared row lock (journal writes of parallel apps do not
        queue behind each other), which a takeover's exclusive lock has to wait for."""
        lease = conn.execute(
            select(LEASES).where(LEASES.c.env == self.env).with_for_update(read=not exclusive)
        ).first()
        if lease is None or lease.epoch != self.epoch or lease.plan_id != self.plan_id:
            self.lost.set()
            raise Fenced(
                f"plan {self.plan_id}: lost the {self.env} lease (epoch {self.epoch} is stale); "
                "another runner took over"
            )

    def _write(
        self,
        wave: int,
        app: str,
        step: str,
        state: str,
        detail: str = "",
        extra: Callable[[Connection], None] | None = None,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        self._commit([_Row(wave, app, step, state, detail, extra, event)])

    def _commit(
        self, rows: list[_Row], *, check_abort: bool = False, exclusive: bool = False
    ) -> list[_Written]:
        """Write journal rows (and their extras) in a fenced transaction, possibly shared with
        other apps' rows (group commit), and return once they are committed.

        With `check_abort`, the last row is a step about to start: if an abort was requested,
        everything before it is still recorded, but it is not, and _Stop is raised.
        """
        batch = self._writer.submit(_Batch(rows, check_abort, exclusive))
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
        """The writer thread's transaction for every batch that arrived together."""
        try:
            with self.ctx.db.write() as conn:
                self._fence(conn, any(b.exclusive for b in group))
                abort_by = None
                if any(b.check_abort for b in group):
                    abort_by = conn.execute(
                        select(PLANS.c.abort_requested_by).where(PLANS.c.id == self.plan_id)
                    ).scalar()
                now = self.ctx.now()
                for b in group:
                    b.at = now
                    rows = b.rows
                    if b.check_abort and abort_by:
                        rows, b.stop_for = rows[:-1], abort_by
                    for r in rows:
                        new_id = new_row_id(conn.execute(
                            insert(STEPS).values(
                                plan_id=self.plan_id, epoch=self.epoch, wave=r.wave, app=r.app,
                                step=r.step, state=r.state, detail=r.detail, at=now,
                            )
                        ))  # fmt: skip
                        seq = None
                        if r.event is not None:
                            seq = self.ctx.audit(
                                conn, r.event[0], r.event[1], app=r.app, env=self.env,
                                plan=self.plan_id,
                            )  # fmt: skip
                        failpoint("in", r.step, r.app)  # inside the fenced transaction
                        if r.extra is not None:
                            r.extra(conn)
                        b.written.append((new_id, r, seq))
        except BaseException as exc:  # handed to every waiting caller: nothing was written
            for b in group:
                b.error, b.written, b.stop_for = exc, [], None

    def _pending_rows(self, app: str) -> list[_Row]:
        row = self._pending.pop(app, None)
        return [row] if row is not None else []

    def _flush(self, app: str) -> None:
        if rows := self._pending_rows(app):
            self._commit(rows)

    def _check_boundary(self) -> None:
        if self.lost.is_set():
            raise Fenced(f"plan {self.plan_id}: lost the {self.env} lease")
        if self.stopping.is_set():
            raise _Stop()
        with self.ctx.db.read() as conn:
            by = conn.execute(
                select(PLANS.c.abort_requested_by).where(PLANS.c.id == self.plan_id)
            ).scalar()
        if by:
            self.abort_seen = by
            self.stopping.set()
            raise _Stop()

    def _step(
        self,
        a: _App,
        step: str,
        action: Callable[[], str | None],
        *,
        detail: str = "",
        on_done: Callable[[Connection], None] | None = None,
        on_fail: Callable[[Connection], None] | None = None,
        boundary: bool = True,
        defer: bool = False,
        intent: tuple[Color | None, str | None] | None = None,
    ) -> None:
        """Journal, run and journal one step. With `defer`, its "done" row is written together
        with the app's next "started" row (one transaction per step boundary, not two).

        A step that changes the target names the `intent` (color, version): its "started" row
        carries the `run.STEP.intent` event, so the target is only called once the intent has
        committed, and its "done"/"failed" row carries the outcome naming it (`intent_seq`).
        """
        if (a.name, step) in self.journal.done:
            return
        earlier = self._pending_rows(a.name)
        announce = None
        if intent is not None:
            color, version = intent
            body = {"app": a.name, "color": color, "version": version, "epoch": self.epoch}
            announce = (f"run.{step}.intent", body)
        started = _Row(a.wave, a.name, step, "started", detail, event=announce)
        if boundary:
            if self.lost.is_set():
                raise Fenced(f"plan {self.plan_id}: lost the {self.env} lease")
            if self.stopping.is_set():
                if earlier:
                    self._commit(earlier)
                raise _Stop()
        intent_seq = self._commit([*earlier, started], check_abort=boundary)[-1][2]
        failpoint("before", step, a.name)
        try:
            note = action()
        except StaleEpoch as exc:  # the intent stays open: the new lease holder closes it
            self.lost.set()
            raise Fenced(f"plan {self.plan_id}: {exc.message}") from None
        except AdapterError as exc:
            failed = self._outcome(step, intent_seq, "failed", error=exc.message)
            self._write(a.wave, a.name, step, "failed", exc.message, on_fail, failed)
            raise _StepFailed(a.name, step, exc.message) from None
        failpoint("after", step, a.name)
        outcome = self._outcome(step, intent_seq, "done", result=note or detail)
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

    # --- heartbeat -------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Renew the lease every third of its life. A storage error is said on the run log and
        retried while the lease still has slack; once it cannot be renewed in time the run is
        treated as fenced (it stops touching anything), never left acting on an expired lease."""
        ttl = lease_seconds()
        failing_since: float | None = None
        while not self._heartbeat_stop.wait(ttl / 3):
            try:
                with self.ctx.db.write() as conn:
                    done = conn.execute(
                        update(LEASES)
                        .where(
                            LEASES.c.env == self.env,
                            LEASES.c.epoch == self.epoch,
                            LEASES.c.plan_id == self.plan_id,
                        )
                        .values(expires_at=self.ctx.now() + timedelta(seconds=ttl))
                    )
                if done.rowcount == 0:
                    self.lost.set()
                    return
                failing_since = None
            except ShipdeckError as exc:  # storage errors arrive translated (core.storage.db)
                failing_since = failing_since or self.ctx.clock.monotonic()
                late = self.ctx.clock.monotonic() - failing_since + ttl / 3 >= ttl
                print(f"heartbeat: lease not renewed: {exc.message}", file=sys.stderr, flush=True)
                if late:
                    print("heartbeat: the lease expires before the next beat: stopping the run",
                          file=sys.stderr, flush=True)  # fmt: skip
                    self.lost.set()
                    return
            except BaseException:  # a bug: the run stops instead of acting on an expiring lease
                self.lost.set()
                raise

    # --- release specs ---------------------------------------------------------------------

    def _spec(self, release_id: int) -> ReleaseSpec:
        """The release as a target sees it; all of the plan's are read in one query up front."""
        if release_id not in self._specs:
            ids = {release_id, *(a.item.release_id for a in self.apps.values())}
            with self.ctx.db.read() as conn:
                rows = conn.execute(select(RELEASES).where(RELEASES.c.id.in_(ids))).all()
                proven = {row.id: proven_release(conn, row).manifest for row in rows}
            for row in rows:
                m = proven[row.id]
                arts = tuple(
                    ResolvedArtifact(e.name, e.uri, e.resolved or e.uri, e.digest or "")
                    for e in m.artifacts
                )
                self._specs[row.id] = ReleaseSpec(
                    m.app, m.version, m.commit, row.digest, dict(m.config), arts
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
                conn.execute(
                    insert(STEPS),
                    [
                        {
                            "plan_id": self.plan_id, "epoch": self.epoch, "wave": f["wave"],
                            "app": f["app"], "step": "prepare", "state": "done",
                            "detail": json.dumps({k: v for k, v in f.items() if k not in ("app", "wave")}),
                            "at": now,
                        }
                        for f in fresh
                    ],
                )  # fmt: skip
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

    def _record_switch(self, a: _App) -> Callable[[Connection], None]:
        def extra(conn: Connection) -> None:
            exists = conn.execute(
                select(DEPLOYMENTS.c.id).where(
                    DEPLOYMENTS.c.plan_id == self.plan_id,
                    DEPLOYMENTS.c.app == a.name,
                    DEPLOYMENTS.c.env == self.env,
                )
            ).first()
            if exists is not None:
                return
            now = self.ctx.now()
            kind = "rollback" if self.body.kind == "rollback" else "deploy"
            inserted = conn.execute(
                insert(DEPLOYMENTS).values(
                    app=a.name, env=self.env, release_id=a.item.release_id, version=a.item.version,
                    commit=a.item.commit, digest=a.item.digest, color=a.to_color, at=now,
                    by=self.ctx.actor.name, plan_id=self.plan_id, kind=kind, outcome="succeeded",
                )
            ).inserted_primary_key  # fmt: skip
            binds = [(DEPLOYMENTS, {"id": inserted[0]})] if inserted else []
            replaced = self.body.replaces.get(a.name)
            if replaced is not None and _succeeded(conn, [DEPLOYMENTS.c.id == replaced]):
                binds.append(
                    binding.change(
                        conn, DEPLOYMENTS, {"id": replaced}, outcome="rolled_back", ended_at=now
                    )
                )
            self.ctx.audit(
                conn,
                "app.switched",
                {"from_color": a.from_color, "to_color": a.to_color, "from_version": a.from_version,
                 "version": a.item.version, "epoch": self.epoch, "kind": kind},
                app=a.name, env=self.env, plan=self.plan_id, binds=binds,
            )  # fmt: skip

        return extra

    def _record_failed(self, a: _App) -> Callable[[Connection], None]:
        def extra(conn: Connection) -> None:
            now = self.ctx.now()
            inserted = conn.execute(
                insert(DEPLOYMENTS).values(
                    app=a.name, env=self.env, release_id=a.item.release_id, version=a.item.version,
                    commit=a.item.commit, digest=a.item.digest, color=a.to_color, at=now,
                    by=self.ctx.actor.name, plan_id=self.plan_id,
                    kind="rollback" if self.body.kind == "rollback" else "deploy",
                    outcome="failed", ended_at=now,
                )
            ).inserted_primary_key  # fmt: skip
            self.ctx.audit(
                conn, "app.failed", {"version": a.item.version, "color": a.to_color},
                app=a.name, env=self.env, plan=self.plan_id,
                binds=[(DEPLOYMENTS, {"id": inserted[0]})] if inserted else (),
            )  # fmt: skip

        return extra

    def _ship(self, a: _App) -> None:
        spec = self._spec(a.item.release_id)
        where = f"{a.item.version} on {a.to_color}"
        self._step(
            a, "stage", lambda: a.target.stage(a.to_color, spec, self.epoch), detail=where,
            on_fail=self._record_failed(a), defer=True, intent=(a.to_color, a.item.version),
        )  # fmt: skip
        self._step(
            a, "health", lambda: self._healthy(a, HEALTH_ATTEMPTS), detail=where,
            on_fail=self._record_failed(a), defer=True,
        )  # fmt: skip
        self._step(
            a, "switch", lambda: a.target.switch(a.to_color, self.epoch),
            detail=f"{a.from_color or 'nothing'} -> {a.to_color}", on_done=self._record_switch(a),
            defer=True, intent=(a.to_color, a.item.version),
        )  # fmt: skip
        self._step(a, "verify", self._checker(a), detail=where)

    def _hold(self, wave: int) -> None:
        """Between waves: a window that closed mid-run holds the next wave until it reopens."""
        held = False
        window: WindowState | None = None
        while True:
            now = self.ctx.now()
            # The window's answer holds until its next opening: ask again only then.
            if window is None or (window.next_open is not None and now >= window.next_open):
                window = env_window(self.ctx, self.env, now)
            with self.ctx.db.read() as conn:
                overrides = [
                    _OverrideFact(o.id, o.by, o.reason, o.until)
                    for o in conn.execute(
                        select(OVERRIDES).where(OVERRIDES.c.plan_id == self.plan_id)
                    )
                ]
            if window.open or active_override(overrides, now) is not None:
                if held:
                    self._write(wave, PLAN_LEVEL, "hold", "done", "window open again")
                return
            if not held:
                why = (
                    f"{window.reason}; {describe_next(window, window_tz(self.ctx, self.env), now)}"
                )

                def audit_hold(conn: Connection, why: str = why) -> None:
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

        def one(a: _App) -> None:
            try:
                self._ship(a)
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
        wave = len(self.body.waves)

        def one(a: _App) -> None:
            stops = a.from_color is not None and a.from_color != a.to_color

            def stop_old() -> str:
                if not stops or a.from_color is None:
                    return "nothing to stop"
                if a.target.live_color() == a.from_color:
                    raise AdapterError(f"{a.name}: {a.from_color} is live again, not stopping it")
                a.target.stop_idle(a.from_color, self.epoch)
                return f"stopped {a.from_color}"

            a_final = _App(a.name, wave, a.item, a.target, a.from_color, a.from_version,
                           a.from_release_id, a.to_color, True)  # fmt: skip
            old = (a.from_color, a.from_version) if stops else None
            self._step(a_final, "finalize", stop_old, boundary=False, intent=old)

        apps = list(self.apps.values())
        with ThreadPoolExecutor(max_workers=min(max(len(apps), 1), MAX_PARALLEL)) as pool:
            for f in [pool.submit(one, a) for a in apps]:
                f.result()

    def _undo(self, a: _App) -> None:
        """Put the app back on what was live before this run; stop what this run staged."""

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

        def mark(conn: Connection) -> None:
            if a.target.live_color() == a.to_color:
                return  # stayed live (first deployment): the record stays true
            now = self.ctx.now()
            mine = [DEPLOYMENTS.c.plan_id == self.plan_id, DEPLOYMENTS.c.app == a.name]
            changed = [
                binding.change(conn, DEPLOYMENTS, {"id": d}, outcome="rolled_back", ended_at=now)
                for d in _succeeded(conn, mine)
            ]
            if changed:
                self.ctx.audit(
                    conn, "app.rolled_back",
                    {"to_color": a.from_color, "version": a.from_version, "epoch": self.epoch},
                    app=a.name, env=self.env, plan=self.plan_id, binds=changed,
                )  # fmt: skip

        self._step(
            a, "rollback", act, on_done=mark, boundary=False, intent=(a.from_color, a.from_version)
        )

    def _roll_back(self) -> list[str]:
        order = sorted(self.apps.values(), key=lambda a: (a.wave, a.name), reverse=True)
        problems: list[str] = []
        for a in order:
            if not a.prepared:
                continue
            try:
                self._undo(a)
            except _StepFailed as exc:
                problems.append(exc.message)
        return problems

    # --- finishing -------------------------------------------------------------------------

    def _finish(self, state: str, result: str, event: str) -> None:
        now = self.ctx.now()

        def extra(conn: Connection) -> None:
            row = load_plan_row(conn, self.plan_id, for_update=True)
            if row.state != state:
                check_transition(self.plan_id, row.state, state)
            finished = binding.change(
                conn, PLANS, {"id": self.plan_id},
                state=state, finished_at=now, updated_at=now, result=result,
            )  # fmt: skip
            conn.execute(
                update(LEASES)
                .where(LEASES.c.env == self.env, LEASES.c.epoch == self.epoch)
                .values(holder=None, plan_id=None, expires_at=None, runner=None)
            )
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
            event = {"succeeded": "run.succeeded", "aborted": "run.aborted",
                     "rolled_back": "run.rolled_back"}.get(state, "run.failed")  # fmt: skip
            self._finish(state, result, event)
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
                self.abort_seen = conn.execute(
                    select(PLANS.c.abort_requested_by).where(PLANS.c.id == self.plan_id)
                ).scalar()
            self._prepare()
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
            decision: str
            if not self.abort_seen and all(live_new.values()):
                try:
                    for a in self.apps.values():
                        self._step(a, "verify", self._checker(a), boundary=False)
                    self._finalize()
                    decision, state = "finished", "succeeded"
                    result = "reconciled: every app already served its new release; finished"
                except _StepFailed as failure:
                    state, result = self._after_failure(failure)
                    decision = "rolled_back" if state == "rolled_back" else "failed"
            else:
                problems = self._roll_back()
                if self.abort_seen:
                    decision, state = "aborted", "aborted"
                    result = (
                        f"aborted by {self.abort_seen}; reconcile rolled back the interrupted run"
                    )
                else:
                    decision, state = "rolled_back", "rolled_back"
                    result = (
                        "reconciled: the run was interrupted before every app switched; rolled back"
                    )
                if problems:
                    decision, state = "failed", "failed"
                    result += f"; rollback problems: {'; '.join(problems)}"
            event = {"succeeded": "run.succeeded", "aborted": "run.aborted",
                     "rolled_back": "run.rolled_back"}.get(state, "run.failed")  # fmt: skip
            self._finish(state, result, event)
            return decision, self.result(state, result)
        finally:
            self._heartbeat_stop.set()
            self._writer.close()
            self._close_targets()

    def _close_intents(self) -> None:
        """Close the effects a stopped runner announced but never recorded the end of: one
        `run.STEP.recovered` per open intent, naming it and saying what the target shows now.
        The old runner is fenced off (its target calls carry the stale epoch), so what is found
        here stays true; finishing or rolling back then goes under intents of its own."""
        with self.ctx.db.read() as conn:
            found = audit.open_intents_of(conn, self.plan_id, _EFFECT_KINDS)
        closing = []
        for ev in found:
            color = json.loads(bytes(ev.payload)).get("color")
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
        lease = conn.execute(select(LEASES).where(LEASES.c.plan_id == ticket.plan_id)).first()
        row = load_plan_row(conn, ticket.plan_id)
    if lease is None or lease.epoch != ticket.epoch or row.state != "running":
        raise Fenced(f"plan {ticket.plan_id}: epoch {ticket.epoch} no longer holds the lease")
    if lease.holder != ctx.actor.name:
        raise ConflictError(f"plan {ticket.plan_id} is run by {lease.holder}, not {ctx.actor.name}")
    return _Engine(ctx, ticket, progress).run()


# --- detached runs ---------------------------------------------------------------------------


@dataclass
class LaunchedRun:
    plan_id: str
    epoch: int
    pid: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None


def launch_run(ctx: Context, plan_id: str) -> LaunchedRun:
    """Start the run (policy + lease, here and now), then execute it in a detached
    `python -m shipdeck.core.runner` process so the caller can return. The runner inherits the database
    URL through the environment (never argv) and acts as the same person."""
    ticket = start_run(ctx, plan_id)
    token_fd = runner_token.hand_over(runner_token.issue(ctx, plan_id, ticket.epoch))
    log_path = ctx.state_dir / "runs" / f"{plan_id}.log"
    make_dirs(log_path.parent)
    code_root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "SHIPDECK_DATABASE_URL": ctx.db.url,
        "PYTHONPATH": os.pathsep.join(p for p in (code_root, os.environ.get("PYTHONPATH")) if p),
        runner_token.TOKEN_FD_ENV: str(token_fd),
    }
    argv = [
        sys.executable, "-m", "shipdeck.core.runner", "--workspace", str(ctx.workspace),
        "--actor", ctx.actor.name, plan_id, str(ticket.epoch),
    ]  # fmt: skip
    try:
        with os.fdopen(open_file(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=ctx.workspace, start_new_session=True, close_fds=True, shell=False,
                pass_fds=(token_fd,),
            )  # fmt: skip
    finally:
        os.close(token_fd)
    claim_runner(ctx, ticket, proc.pid)
    threading.Thread(target=proc.wait, name=f"reap-{plan_id}", daemon=True).start()
    return LaunchedRun(plan_id, ticket.epoch, proc.pid, log_path, proc)


def wait_run(
    ctx: Context,
    plan_id: str,
    *,
    timeout: float | None = None,
    on_step: Callable[[StepView], None] | None = None,
    launched: LaunchedRun | None = None,
    poll: float = 0.2,
) -> RunResult:
    """Follow a run through its journal until it ends (any process may do this).

    Raises TimedOut (exit 6) after `timeout` seconds (the run goes on), and OperationFailed if
    the runner process we launched died while the plan is still running.
    """
    clock = ctx.clock
    deadline = None if timeout is None else clock.monotonic() + timeout
    last = 0
    while True:
        with ctx.db.read() as conn:
            row = load_plan_row(conn, plan_id)
            fresh = steps_of(conn, plan_id, after_id=last)
        for s in fresh:
            last = s.id
            if on_step is not None:
                on_step(s)
        if row.state != "running":
            with ctx.db.read() as conn:
                steps = tuple(steps_of(conn, plan_id))
            return RunResult(plan_id, row.env, row.state, row.result, row.run_epoch, steps)
        if launched is not None and not launched.alive():
            clock.sleep(poll)  # its last journal write may have just committed
            with ctx.db.read() as conn:
                if load_plan_row(conn, plan_id).state == "running":
                    raise OperationFailed(
                        f"plan {plan_id}: the runner (pid {launched.pid}) exited while the plan "
                        f"was running; see {launched.log_path} and run 'shipdeck reconcile'"
                    )
            continue
        if deadline is not None and clock.monotonic() >= deadline:
            raise TimedOut(
                f"plan {plan_id} still running after {timeout:g}s; it goes on in the background "
                f"(follow it with 'shipdeck plan show {plan_id}')"
            )
        clock.sleep(poll)


# --- abort, reconcile ------------------------------------------------------------------------


def abort(ctx: Context, plan_id: str) -> RunResult:
    """Stop a plan. Before it runs: aborted at once. Running: the runner stops at its next step
    boundary and rolls back (this returns at once; follow with wait_run). A run whose runner
    is gone is rolled back here and now."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("plan.abort", env=row.env, plan=plan_id)
    orphaned = False
    with ctx.db.write() as conn:
        lease = lock_lease(conn, row.env)
        row = load_plan_row(conn, plan_id, for_update=True)
        now = ctx.now()
        if row.state in PRE_RUN:
            aborted = binding.change(
                conn, PLANS, {"id": plan_id}, state="aborted", finished_at=now, updated_at=now,
                result=f"aborted by {ctx.actor.name} before it ran",
            )  # fmt: skip
            ctx.audit(conn, "plan.aborted", {"from": row.state, "state": "aborted"},
                      env=row.env, plan=plan_id, binds=[aborted])  # fmt: skip
        elif row.state == "running":
            asked = binding.change(
                conn, PLANS, {"id": plan_id}, abort_requested_by=ctx.actor.name, updated_at=now
            )
            ctx.audit(conn, "run.abort_requested", {"epoch": row.run_epoch},
                      env=row.env, plan=plan_id, binds=[asked])  # fmt: skip
            orphaned = not (lease_live(lease, now) and lease.plan_id == plan_id)
        else:
            raise ConflictError(f"plan {plan_id} is {label(row.state)}: nothing to abort")
    if orphaned:
        reconcile(ctx, env=row.env, auto=True)
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        steps = tuple(steps_of(conn, plan_id))
    return RunResult(plan_id, row.env, row.state, row.result, row.run_epoch, steps)


def reconcile(ctx: Context, env: str | None = None, *, auto: bool = False) -> list[ReconcileResult]:
    """Take over every running plan whose lease expired or whose runner died, and finish or roll
    it back so recorded state equals real state. `auto` is for commands that reconcile on the
    way (no reconcile permission needed: they recover, they do not start anything new)."""
    if not auto:
        ctx.require("reconcile", env=env)
    if env is not None:
        env_config(ctx, env)
    out: list[ReconcileResult] = []
    with ctx.db.read() as conn:
        query = select(PLANS.c.id, PLANS.c.env).where(PLANS.c.state == "running")
        if env is not None:
            query = query.where(PLANS.c.env == env)
        running = conn.execute(query.order_by(PLANS.c.started_at)).all()
    for plan_id, plan_env in running:
        with ctx.db.write() as conn:
            lease = lock_lease(conn, plan_env)
            row = load_plan_row(conn, plan_id, for_update=True)
            if row.state != "running" or (
                lease_live(lease, ctx.now()) and lease.plan_id == plan_id
            ):
                continue  # finished meanwhile, or its runner is alive and well
            if lease_live(lease, ctx.now()):
                continue  # another live run holds the env; it will not touch this plan's apps
            old_epoch = lease.epoch
            epoch = _take_lease(ctx, conn, lease, plan_id)
            taken = binding.change(conn, PLANS, {"id": plan_id}, run_epoch=epoch)
            ctx.audit(
                conn, "run.reconciling", {"old_epoch": old_epoch, "epoch": epoch, "holder": lease.holder},
                env=plan_env, plan=plan_id, binds=[taken],
            )  # fmt: skip
        try:
            decision, res = _Engine(ctx, RunTicket(plan_id, epoch)).recover()
        except Fenced:
            continue  # yet another reconciler took over: its result stands
        out.append(ReconcileResult(plan_id, plan_env, decision, res.state, res.result))
    return out


# --- rollback and deploy ---------------------------------------------------------------------


def rollback(
    ctx: Context,
    app: str,
    env: str,
    reason: str = "",
    progress: Callable[[StepView], None] | None = None,
) -> RunResult:
    """Switch `app` in `env` back to the release live before the current one: instant while the
    old color is still warm (staging it again is a no-op), a redeploy otherwise. Runs as a
    one-app rollback plan under the environment lease; needs the 'rollback' permission, and a
    reason in a protected environment; no window holds it (it is how incidents end). Where the
    environment sets `rollback_approvals`, the plan waits for them instead: BlockedError (exit 3)
    names it, and `plan run` runs it once approved."""
    check_target(ctx, app, env)
    ctx.require("rollback", app=app, env=env)
    check_reason(ctx, env, reason)
    reconcile(ctx, env=env, auto=True)
    needs = env_config(ctx, env).rollback_approvals
    with ctx.db.write() as conn:
        lease = lock_lease(conn, env)
        if lease_live(lease, ctx.now()):
            raise _locked(env, lease)
        choice = choose(conn, app, env)
        current, rel = choice.current, choice.release
        item = PlanItem(app, rel.version, rel.id, rel.digest, rel.commit, rel.created_by)
        body = build_body(ctx, env, [item], kind="rollback", failure_policy="halt",
                          replaces={app: current.id}, reason=reason)  # fmt: skip
        name = f"rollback {app} {current.version} -> {rel.version}"
        plan_id = insert_plan(ctx, conn, body, name, "awaiting_approval" if needs else "running")
        if needs:
            note = approvals_note(env_config(ctx, env))
            blocker = Blocker("approvals_missing", f"rollback plan {plan_id} {note}")
            pending = BlockedError(
                f"{blocker.message}; once approved: shipdeck plan run {plan_id}",
                blockers=[blocker],
            )
        else:
            pending = None
            epoch = _take_lease(ctx, conn, lease, plan_id)
            now = ctx.now()
            started = binding.change(
                conn, PLANS, {"id": plan_id}, started_at=now, run_epoch=epoch, result=reason
            )
            ctx.audit(
                conn, "run.started",
                {"epoch": epoch, "kind": "rollback", "from_version": current.version,
                 "version": rel.version, "reason": reason},
                app=app, env=env, plan=plan_id, binds=[started],
            )  # fmt: skip
    if pending is not None:
        notify(ctx, "plan.awaiting_approval", {"plan": plan_id, "env": env}, env=env, plan=plan_id)
        raise pending
    return _Engine(ctx, RunTicket(plan_id, epoch), progress).run()


def deploy_plan(ctx: Context, app: str, version: str, env: str) -> str:
    """The one-app plan `deploy` runs (same policy as any plan; an identical open plan is
    reused); returns its id. Blocked, it raises BlockedError and keeps no plan behind."""
    view = create_plan(ctx, env, [f"{app}@{version}"], kind="deploy", only_if_runnable=True)
    if view.reused and view.blockers:
        why = f"plan {view.id} (open, same content) is blocked: {view.blockers[0].message}"
        raise BlockedError(why, blockers=list(view.blockers))
    return view.id


def deploy(
    ctx: Context,
    app: str,
    version: str,
    env: str,
    progress: Callable[[StepView], None] | None = None,
) -> RunResult:
    """A one-app plan under the same policy, run in the calling thread. If policy blocks it,
    BlockedError names every blocker and no plan is kept."""
    return run_plan(ctx, deploy_plan(ctx, app, version, env), progress)
