"""The checklist: ticking items, and running the commands items name (argv, no shell)."""

from __future__ import annotations

from shipdeck.core.domain.config import ChecklistItem
from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.domain.redact import redact_text
from shipdeck.core.errors import AdapterError, ConflictError, NotFoundError, OperationFailed
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans.lookups import load_plan_row
from shipdeck.core.services.plans.verdicts import verdict
from shipdeck.core.services.plans.views import ChecklistView
from shipdeck.core.storage import plans

OUTPUT_LIMIT = 64 * 1024


# --- checklist ---------------------------------------------------------------------------------


def _run_check(
    ctx: Context, plan_id: str, env: str, apps: list[str], item: ChecklistItem
) -> tuple[bool, str, int | None, int]:
    """Run the item's command through the command runner, once its intent is committed (no
    record, no command). Returns ok, output, exit code and the intent's sequence number."""
    assert item.command is not None
    argv = list(item.command)
    with ctx.db.write() as conn:
        intent = ctx.audit(
            conn,
            "plan.check.intent",
            {"item": item.id, "command": argv, "timeout": item.time_limit},
            env=env,
            plan=plan_id,
        )
    child_env = {
        "SHIPDECK_PLAN": plan_id,
        "SHIPDECK_ENV": env,
        "SHIPDECK_APPS": ",".join(apps),
        "SHIPDECK_WORKSPACE": str(ctx.workspace),
    }
    try:
        done = ctx.commands.run(
            argv,
            timeout=item.time_limit,
            cwd=ctx.workspace,
            env=child_env,
            label=f"checklist item '{item.id}'",
        )
    except AdapterError as exc:
        return False, exc.message, None, intent
    output = _tail(done.stdout + done.stderr)
    if done.timed_out:
        return False, output + f"\n(timed out after {item.time_limit:g}s)", None, intent
    return done.returncode == 0, output, done.returncode, intent


def _tail(text: str) -> str:
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
    ok, output, code, intent = True, note, None, None
    if entry.command:
        ok, output, code, intent = _run_check(ctx, plan_id, row.env, v.body.apps, entry)
    output = redact_text(output, ctx.secrets)  # a check may print a token: never stored as is
    now = ctx.now()
    with ctx.db.write() as conn:
        tick = plans.put_tick(conn, plan_id, entry.id, ctx.actor.name, now, output, ok)
        ctx.audit(
            conn,
            "plan.checked",
            {"item": entry.id, "ok": ok, "command": list(entry.command) if entry.command else None,
             "exit_code": code, **({} if intent is None else {"intent_seq": intent})},
            env=row.env,
            plan=plan_id,
            binds=[tick],
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
