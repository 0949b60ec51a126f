"""The store of what a run records: the run-state columns of its plan row (abort request, epoch,
end) and the deployment rows its switches, failures and rollbacks write.

Both are bound rows (core.storage.binding): every change returns the bind for the event that
vouches for it, so the engine appends that event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, insert, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind
from shipdeck.core.storage.tables import DEPLOYMENTS, PLANS

# --- the plan's run state -----------------------------------------------------------------


def env_of(conn: Connection, plan_id: str) -> str | None:
    """The plan's environment; None for a plan that is not there."""
    return conn.execute(select(PLANS.c.env).where(PLANS.c.id == plan_id)).scalar()


# Built once: every journal transaction that starts a step asks it.
_ABORT_BY = select(PLANS.c.abort_requested_by).where(PLANS.c.id == bindparam("plan_id"))


def abort_requested_by(conn: Connection, plan_id: str) -> str | None:
    """Who asked the plan's run to stop (`plan abort`), or None."""
    return conn.execute(_ABORT_BY, {"plan_id": plan_id}).scalar()


def running(conn: Connection, env: str | None = None) -> list[tuple[str, str]]:
    """(plan id, env) of every running plan (in `env`), the longest running first."""
    query = select(PLANS.c.id, PLANS.c.env).where(PLANS.c.state == "running")
    if env is not None:
        query = query.where(PLANS.c.env == env)
    return [(r.id, r.env) for r in conn.execute(query.order_by(PLANS.c.started_at))]


def _change_plan(conn: Connection, plan_id: str, **values: Any) -> Bind:
    return binding.change(conn, PLANS, {"id": plan_id}, **values)


def start(conn: Connection, plan_id: str, epoch: int, digest: str, at: datetime) -> Bind:
    """The plan runs under lease `epoch`, as approved at `digest`; what an earlier run of it
    left (its end, an abort request, a result) is cleared."""
    return _change_plan(
        conn, plan_id, state="running", started_at=at, finished_at=None, run_epoch=epoch,
        digest=digest, abort_requested_by=None, result="", updated_at=at,
    )  # fmt: skip


def start_rollback(conn: Connection, plan_id: str, epoch: int, at: datetime, reason: str) -> Bind:
    """A rollback plan, made running, starts under lease `epoch`; its result says why so far."""
    return _change_plan(conn, plan_id, started_at=at, run_epoch=epoch, result=reason)


def end(conn: Connection, plan_id: str, state: str, at: datetime, result: str) -> Bind:
    """The plan reaches `state` (its run ended, or it was aborted before it ran)."""
    return _change_plan(conn, plan_id, state=state, finished_at=at, updated_at=at, result=result)


def ask_abort(conn: Connection, plan_id: str, by: str, at: datetime) -> Bind:
    """Ask the running plan's runner to stop at its next step boundary."""
    return _change_plan(conn, plan_id, abort_requested_by=by, updated_at=at)


def take_over(conn: Connection, plan_id: str, epoch: int) -> Bind:
    """The plan now runs under a reconciler's lease `epoch`."""
    return _change_plan(conn, plan_id, run_epoch=epoch)


# --- deployments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDeployment:
    """A deployment row as a run records it: a switch (succeeded) or a failure."""

    app: str
    env: str
    release_id: int
    version: str
    commit: str
    digest: str
    color: str | None
    at: datetime
    by: str
    plan_id: str
    kind: str  # deploy | rollback
    outcome: str  # succeeded | failed
    ended_at: datetime | None = None


# Built once: a run records a deployment per app in the transaction of its switch, which the
# wave's other apps may be waiting on (group commit); per-call construction cost more than SQLite.
_RECORD = insert(DEPLOYMENTS)
_RECORDED = select(DEPLOYMENTS.c.id).where(
    DEPLOYMENTS.c.plan_id == bindparam("plan_id"),
    DEPLOYMENTS.c.app == bindparam("app"),
    DEPLOYMENTS.c.env == bindparam("env"),
)


def record(conn: Connection, deployment: NewDeployment) -> Bind:
    key = conn.execute(_RECORD, vars(deployment)).inserted_primary_key
    assert key is not None
    return DEPLOYMENTS, {"id": int(key[0])}


def recorded(conn: Connection, plan_id: str, app: str, env: str) -> bool:
    """Whether the plan has recorded a deployment of `app` in `env` already."""
    found = conn.execute(_RECORDED, {"plan_id": plan_id, "app": app, "env": env})
    return found.first() is not None


def _succeeded(conn: Connection, *where: ColumnElement[bool]) -> list[int]:
    query = select(DEPLOYMENTS.c.id).where(*where, DEPLOYMENTS.c.outcome == "succeeded")
    return list(conn.execute(query).scalars())


def succeeded_of(conn: Connection, plan_id: str, app: str) -> list[int]:
    """The ids of the plan's succeeded deployments of `app`: what rolling it back ends."""
    return _succeeded(conn, DEPLOYMENTS.c.plan_id == plan_id, DEPLOYMENTS.c.app == app)


def is_succeeded(conn: Connection, deployment_id: int) -> bool:
    """Whether deployment `deployment_id` is there and succeeded (a switch that replaces it
    ends it; one that already ended stays as it is)."""
    return bool(_succeeded(conn, DEPLOYMENTS.c.id == deployment_id))


def roll_back(conn: Connection, deployment_id: int, at: datetime) -> Bind:
    """The deployment's release stopped being live at `at`: rolled back."""
    return binding.change(
        conn, DEPLOYMENTS, {"id": deployment_id}, outcome="rolled_back", ended_at=at
    )
