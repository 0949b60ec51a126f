"""Proof that a detached runner was started by the command that took the lease.

The epoch a runner is given is public (`plan show -o json` prints it), so it cannot be the proof.
The launching command draws a one-time token, stores only its SHA-256 with the lease, and hands
the token to the child through an inherited pipe (core.system.launcher): never argv (any local user reads
/proc/PID/cmdline), never the environment, never any output. The runner redeems it before it may
act; redeeming clears the hash, so the token cannot be used twice, and a runner started by hand
(no token, or a guessed one) is refused with an audited `run.runner_refused`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets

from sqlalchemy import select, update

from shipdeck.core.errors import PermissionDenied
from shipdeck.core.services.context import Context
from shipdeck.core.storage.tables import LEASES, PLANS
from shipdeck.core.system.launcher import TOKEN_FD_ENV


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(ctx: Context, plan_id: str, epoch: int) -> str:
    """A fresh token for the runner of `plan_id` at `epoch`; its hash is kept with the lease."""
    token = secrets.token_urlsafe(32)
    with ctx.db.write() as conn:
        env = conn.execute(select(PLANS.c.env).where(PLANS.c.id == plan_id)).scalar_one()
        conn.execute(
            update(LEASES)
            .where(LEASES.c.env == env, LEASES.c.epoch == epoch, LEASES.c.plan_id == plan_id)
            .values(runner_token=_hash(token))
        )
        ctx.audit(conn, "run.runner_armed", {"epoch": epoch}, env=env, plan=plan_id)
    return token


def receive() -> str | None:
    """The token from the inherited pipe named in the environment, or None without one."""
    fd_text = os.environ.pop(TOKEN_FD_ENV, None)
    if not fd_text or not fd_text.isdigit():
        return None
    fd = int(fd_text)
    try:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
        return b"".join(chunks).decode() or None
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def redeem(ctx: Context, plan_id: str, epoch: int, token: str | None) -> None:
    """Let this runner act only with the token issued for this lease; refuse and audit else."""
    with ctx.db.write() as conn:
        env = conn.execute(select(PLANS.c.env).where(PLANS.c.id == plan_id)).scalar()
        row = conn.execute(
            select(LEASES.c.runner_token)
            .where(LEASES.c.env == env, LEASES.c.epoch == epoch, LEASES.c.plan_id == plan_id)
            .with_for_update()
        ).first()
        stored = row.runner_token if row is not None else None
        if token is not None and stored is not None and hmac.compare_digest(stored, _hash(token)):
            conn.execute(
                update(LEASES)
                .where(LEASES.c.env == env, LEASES.c.epoch == epoch)
                .values(runner_token=None)
            )
            ctx.audit(conn, "run.runner_admitted", {"epoch": epoch, "pid": os.getpid()},
                      env=env, plan=plan_id)  # fmt: skip
            return
        why = "no runner token" if token is None else "a runner token this lease did not issue"
        if token is not None and stored is None:
            why = "a runner token that is used up or was never issued"
        ctx.audit(conn, "run.runner_refused", {"epoch": epoch, "pid": os.getpid(), "reason": why},
                  env=env, plan=plan_id)  # fmt: skip
    raise PermissionDenied(
        f"runner for plan {plan_id} epoch {epoch} refused: {why} (a runner is started only by "
        "'shipdeck plan run', which takes the lease)"
    )
