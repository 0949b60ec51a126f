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

from shipdeck.core.errors import NotFoundError, PermissionDenied
from shipdeck.core.services.context import Context
from shipdeck.core.storage import runner_tokens, runs
from shipdeck.core.system.launcher import TOKEN_FD_ENV


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(ctx: Context, plan_id: str, epoch: int) -> str:
    """A fresh token for the runner of `plan_id` at `epoch`; its hash is kept with the lease."""
    token = secrets.token_urlsafe(32)
    with ctx.db.write() as conn:
        env = runs.env_of(conn, plan_id)
        if env is None:
            raise NotFoundError(f"no plan {plan_id}")
        runner_tokens.arm(conn, env, epoch, plan_id, _hash(token))
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
        env = runs.env_of(conn, plan_id)
        stored = None if env is None else runner_tokens.locked_hash(conn, env, epoch, plan_id)
        proven = (
            token is not None and stored is not None and hmac.compare_digest(stored, _hash(token))
        )
        if env is not None and proven:
            runner_tokens.use_up(conn, env, epoch)
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
