"""The checklist: ticking items, and running the commands items name (argv, no shell)."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import delete, insert

from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.domain.redact import redact_text
from shipdeck.core.errors import ConflictError, NotFoundError, OperationFailed
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans.lookups import load_plan_row
from shipdeck.core.services.plans.verdict import verdict
from shipdeck.core.services.plans.views import ChecklistView
from shipdeck.core.storage.tables import TICKS

CHECK_TIMEOUT = 600.0
OUTPUT_LIMIT = 64 * 1024


# --- checklist ---------------------------------------------------------------------------------


def _run_check(
    ctx: Context, plan_id: str, env: str, apps: list[str], argv: tuple[str, ...]
) -> tuple[bool, str, int | None]:
    child_env = {
        **os.environ,
        "SHIPDECK_PLAN": plan_id,
        "SHIPDECK_ENV": env,
        "SHIPDECK_APPS": ",".join(apps),
        "SHIPDECK_WORKSPACE": str(ctx.workspace),
    }
    try:
        done = subprocess.run(
            list(argv), cwd=ctx.workspace, env=child_env, capture_output=True,
            timeout=CHECK_TIMEOUT, shell=False, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return False, f"command not found: {argv[0]}", None
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return False, _tail(out) + f"\n(timed out after {CHECK_TIMEOUT:g}s)", None
    except OSError as exc:
        return False, f"cannot run {argv[0]}: {exc.strerror or exc}", None
    return done.returncode == 0, _tail(done.stdout + done.stderr), done.returncode


def _tail(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]


def check_item(ctx: Context, plan_id: str, item: str, note: str = "") -> ChecklistView:
    """Tick a checklist item as the acting person, or, for an item that names a command, run
    that command (argv, no shell) and tick it only if it succeeds. The output is kept with the
    plan either way; a failed command raises OperationFailed (exit 5) after recording it."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        v = verdict(ctx, conn, row)
    ctx.require("plan.check", env=row.env, plan=plan_id)
    entry = next((c for c in v.facts.checklist if c.id == item or c.text == item), None)
    if entry is None:
        known = ", ".join(f"'{c.id}'" for c in v.facts.checklist) or "none"
        raise NotFoundError(f"plan {plan_id} has no checklist item '{item}' (items: {known})")
    if row.state not in PRE_RUN:
        raise ConflictError(f"plan {plan_id} is {label(row.state)}: its checklist is closed")
    ok, output, code = True, note, None
    if entry.command:
        ok, output, code = _run_check(ctx, plan_id, row.env, v.body.apps, entry.command)
    output = redact_text(output, ctx.secrets)  # a check may print a token: never stored as is
    now = ctx.now()
    with ctx.db.write() as conn:
        conn.execute(delete(TICKS).where(TICKS.c.plan_id == plan_id, TICKS.c.item == entry.id))
        conn.execute(
            insert(TICKS).values(
                plan_id=plan_id, item=entry.id, by=ctx.actor.name, at=now, output=output, ok=ok
            )
        )
        ctx.audit(
            conn,
            "plan.checked",
            {"item": entry.id, "ok": ok, "command": list(entry.command) if entry.command else None,
             "exit_code": code},
            env=row.env,
            plan=plan_id,
            binds=[(TICKS, {"plan_id": plan_id, "item": entry.id})],
        )  # fmt: skip
    if not ok:
        last = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "no output")
        raise OperationFailed(
            f"checklist item '{entry.id}': command {entry.command[0] if entry.command else ''} "
            f"failed ({'exit ' + str(code) if code is not None else 'did not finish'}): {last[:200]}"
        )
    return ChecklistView(
        entry.id, entry.text, entry.command, True, ctx.actor.name, now, True, output
    )
