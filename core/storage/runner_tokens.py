"""The store of runner tokens: the SHA-256 of the one-time token a detached runner redeems, kept
on the lease it was issued for (core.services.runner_token says why).

Only the hash is ever stored or read back; each function is scoped to the lease's epoch, so a
token issued for one run cannot admit the runner of another.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, select, update

from shipdeck.core.storage.tables import LEASES


def _of(env: str, epoch: int, plan_id: str) -> tuple[ColumnElement[bool], ...]:
    return LEASES.c.env == env, LEASES.c.epoch == epoch, LEASES.c.plan_id == plan_id


def arm(conn: Connection, env: str, epoch: int, plan_id: str, token_hash: str) -> None:
    """Keep `token_hash` with the plan's lease at `epoch` (nothing if it no longer holds it)."""
    conn.execute(update(LEASES).where(*_of(env, epoch, plan_id)).values(runner_token=token_hash))


def locked_hash(conn: Connection, env: str, epoch: int, plan_id: str) -> str | None:
    """The hash kept with the plan's lease at `epoch`, locked until the transaction ends; None
    when there is none (used up, never issued) or the lease is not the plan's at `epoch`."""
    query = select(LEASES.c.runner_token).where(*_of(env, epoch, plan_id)).with_for_update()
    found = conn.execute(query).first()
    return None if found is None else found.runner_token


def use_up(conn: Connection, env: str, epoch: int) -> None:
    """Clear the hash, so the token cannot be redeemed twice."""
    conn.execute(
        update(LEASES).where(LEASES.c.env == env, LEASES.c.epoch == epoch).values(runner_token=None)
    )
