"""`shipdeck plan ...`: draft, edit, submit, list, show, check, approve, reject, run, promote,
abort.

Thin: each command calls one service and renders its dataclass. Runs start and are followed
through tui.commands.runs, as `deploy` and `rollback` are (tui.commands.shipping).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shipdeck.core.errors import UsageError
from shipdeck.tui import output
from shipdeck.tui.commands.common import context, parse_span, utc_when
from shipdeck.tui.commands.runs import emit_queued, queue_plan, run_plan

if TYPE_CHECKING:
    from shipdeck.core.domain.plan import FailurePolicy
    from shipdeck.core.services.plans import PlanSummary, PlanView


def _policy(text: str | None) -> FailurePolicy | None:
    if text is None:
        return None
    if text not in ("rollback", "halt"):
        raise UsageError(f"--failure-policy '{text}': expected rollback or halt")
    return "rollback" if text == "rollback" else "halt"


def _show(view: PlanView) -> None:
    output.say(f"plan {view.id}  {view.env}  {view.state.replace('_', ' ')}  {view.name}")
    output.say(f"  digest   {view.digest}")
    output.say(f"  drafted  {utc_when(view.created_at)} by {view.created_by}")
    output.say(f"  failure  {view.failure_policy}")
    output.say(f"  window   {view.window_text}")
    if view.rollback is not None:
        output.say(f"  rollback {view.rollback.what}")
    for change in view.downgrades:
        output.say(f"  warning  {change.sentence}")
    for later in view.superseded_by:
        output.say(f"  history  {later.sentence}")
    for n, wave in enumerate(view.waves, 1):
        items = {i.app: i for i in view.items}
        output.say(f"  wave {n}   " + ", ".join(f"{a} {items[a].version}" for a in wave))
    need = view.approvals_required
    roles = " or ".join(view.approval_roles) or "-"
    if view.rollback is not None:
        output.say(f"  approvals: {view.rollback.approvals_note}")
    else:
        output.say(
            f"  approvals ({need} needed from {roles}):" if need else "  approvals: none needed"
        )
    for a in view.approvals:
        tag = "" if a.current else "  [stale: given for an earlier digest]"
        note = f" - {a.comment}" if a.comment else ""
        output.say(f"    {a.decision:<8} {a.by:<10} {utc_when(a.at)}{note}{tag}")
    if view.checklist:
        output.say("  checklist:")
    for c in view.checklist:
        mark = "x" if c.done else ("!" if c.ok is False else " ")
        who = f"  ({c.by}, {utc_when(c.at)})" if c.by else ""
        run = f"  runs: {' '.join(c.command)}" if c.command else ""
        output.say(f"    [{mark}] {c.item}: {c.text}{who}{run}")
    for o in view.overrides:
        state = "active" if o.active else "expired"
        ack = f", acknowledged by {o.acknowledged_by}" if o.acknowledged_by else ", review open"
        output.say(
            f"  override #{o.id} by {o.by} until {utc_when(o.until)} ({state}{ack}): {o.reason}"
        )
    if view.blockers:
        output.say("  blocked:")
        for b in view.blockers:
            output.say(f"    - [{b.kind}] {b.message}")
    if view.warnings:
        output.say("  warnings:")
        for w in view.warnings:
            output.say(f"    - [{w.kind}] {w.message}")
    if view.lock is not None:
        output.say(f"  lock     {view.lock.holder} (plan {view.lock.plan_id})")
    if view.queued is not None:
        output.say(f"  queue    {view.queued.sentence}")
    for app, weight in view.canary_weights.items():
        output.say(f"  canary   {app} at {weight}%")
    if view.steps:
        output.say("  journal:")
        for s in view.steps:
            output.say(
                f"    {s.at:%H:%M:%S} e{s.epoch} w{s.wave} {s.app:<14} {s.step:<9} {s.state:<8} {s.detail}"
            )
    if view.result:
        output.say(f"  result   {view.result}")


def _history(p: PlanSummary) -> list[str]:
    """What `plan list` says under its table about a plan: a rollback's from/to, actor and
    reason, and what replaced the plan since, so a finished plan's state is not read as live."""
    notes = []
    if p.rollback is not None:
        notes.append(f"{p.id}: rollback of {p.rollback.what}")
    for later in p.superseded_by:
        notes.append(f"{p.id}: {later.sentence}")
    return notes


def _emit_plan(view: PlanView, **extra: object) -> None:
    if view.reused:
        output.info(f"plan {view.id} is open with exactly this content (same digest): no new plan")
    for change in view.downgrades:
        output.info(f"warning: {change.sentence}")
    if output.OPTIONS.machine:
        output.emit({"plan": view.as_dict(), **extra})
    else:
        _show(view)


def register(app: typer.Typer) -> None:
    plan = typer.Typer(
        help="Coordinated plans: draft, approve, check, run, abort.", no_args_is_help=True
    )
    app.add_typer(plan, name="plan")

    @plan.command("create")
    def create(
        items: list[str] = typer.Argument(
            None,
            metavar="APP@VERSION...",
            help="Default: every app whose latest release is not live.",
        ),
        env: str = typer.Option(..., "--env", "-e"),
        name: str = typer.Option("", "--name"),
        check: list[str] = typer.Option(
            [], "--check", help="An extra checklist item for this plan."
        ),
        failure_policy: str | None = typer.Option(
            None, "--failure-policy", help="rollback or halt (default: the env's)."
        ),
        draft: bool = typer.Option(False, "--draft", help="Keep it a draft (submit it later)."),
    ) -> None:
        """Draft a coordinated plan; waves follow depends_on."""
        from shipdeck.core.services.plans import create_plan

        view = create_plan(
            context(), env, items or [], name=name, extra_checklist=check,
            failure_policy=_policy(failure_policy), draft=draft,
        )  # fmt: skip
        _emit_plan(view)

    @plan.command("edit")
    def edit(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        add: list[str] = typer.Option([], "--add", help="APP@VERSION to add or replace."),
        remove: list[str] = typer.Option([], "--remove", help="APP to take out."),
        failure_policy: str | None = typer.Option(None, "--failure-policy"),
    ) -> None:
        """Change a plan before it runs (earlier approvals stop counting)."""
        from shipdeck.core.services.plans import update_plan

        _emit_plan(
            update_plan(
                context(), plan_id, add=add, remove=remove, failure_policy=_policy(failure_policy)
            )
        )

    @plan.command("submit")
    def submit(plan_id: str = typer.Argument(..., metavar="PLAN")) -> None:
        """Send a draft for approval."""
        from shipdeck.core.services.plans import submit_plan

        _emit_plan(submit_plan(context(), plan_id))

    @plan.command("list")
    def list_(
        env: str | None = typer.Option(None, "--env", "-e"),
        state: str | None = typer.Option(None, "--state"),
        limit: int = typer.Option(50, "--limit"),
    ) -> None:
        """Plans, newest first."""
        from shipdeck.core.services.plans import list_plans

        plans = list_plans(context(), env=env, state=state, limit=limit)
        if output.OPTIONS.machine:
            output.emit({"plans": [p.as_dict() for p in plans]})
            return
        output.table(
            ["PLAN", "ENV", "STATE", "BY", "CREATED", "NAME"],
            [
                [p.id, p.env, p.state.replace("_", " "), p.created_by, utc_when(p.created_at), p.name]
                for p in plans
            ],
        )  # fmt: skip
        notes = [line for p in plans for line in _history(p)]
        if notes:
            output.say("history:")
        for line in notes:
            output.say(f"  {line}")

    @plan.command("show")
    def show(plan_id: str = typer.Argument(..., metavar="PLAN")) -> None:
        """Items, waves, approvals, checklist, blockers and the run journal."""
        from shipdeck.core.services.plans import get_plan

        _emit_plan(get_plan(context(), plan_id))

    @plan.command("check")
    def check_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        item: str = typer.Argument(..., metavar="ITEM"),
        note: str = typer.Option("", "--note"),
    ) -> None:
        """Tick a checklist item (or run its command)."""
        from shipdeck.core.services.plans import check_item

        tick = check_item(context(), plan_id, item, note)
        if output.OPTIONS.machine:
            output.emit(
                {"item": tick.item, "done": tick.done, "by": tick.by, "output": tick.output}
            )
        else:
            output.say(f"[x] {tick.item}: {tick.text} (by {tick.by})")
            if tick.command and tick.output.strip():
                output.info(tick.output.rstrip())

    @plan.command("approve")
    def approve_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        comment: str = typer.Option("", "--comment"),
    ) -> None:
        """Approve the plan as it is now (bound to its digest)."""
        from shipdeck.core.services.plans import approve

        _emit_plan(approve(context(), plan_id, comment))

    @plan.command("reject")
    def reject_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        reason: str = typer.Option(..., "--reason"),
    ) -> None:
        """Reject the plan: it stops for good."""
        from shipdeck.core.services.plans import reject

        _emit_plan(reject(context(), plan_id, reason))

    @plan.command("run")
    def run_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        wait: bool = typer.Option(
            False, "--wait", help="Follow the run to its end (exit 5 if it fails)."
        ),
        timeout: str | None = typer.Option(
            None, "--timeout", help="With --wait: give up waiting after this long (exit 6)."
        ),
        when_open: bool = typer.Option(
            False,
            "--when-open",
            help="Queue it to start at the next opening of its window (or when the environment "
            "is free); policy is checked again then. Cancel with 'plan unqueue'.",
        ),
    ) -> None:
        """Run the plan (exit 3 with blockers if it may not run now)."""
        if when_open:
            if wait or timeout:
                raise UsageError(
                    "--when-open returns once the plan is queued: drop --wait/--timeout"
                )
            queue_plan(context(), plan_id)
            return
        run_plan(context(), plan_id, wait, timeout)

    @plan.command("unqueue")
    def unqueue_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        reason: str = typer.Option("", "--reason", help="Kept with the queue entry and its event."),
    ) -> None:
        """Take a plan queued with 'plan run --when-open' off the queue."""
        from shipdeck.core.services.runs import unqueue

        emit_queued(unqueue(context(), plan_id, reason))

    @plan.command("promote")
    def promote_(plan_id: str = typer.Argument(..., metavar="PLAN")) -> None:
        """Move a running canary past the pause it waits at (exit 4 when nothing can be)."""
        from shipdeck.core.services.plans import get_plan
        from shipdeck.core.services.runs import promote

        ctx = context()
        promote(ctx, plan_id)
        if output.OPTIONS.machine:
            output.emit({"plan": get_plan(ctx, plan_id).as_dict(), "promote_requested": True})
        else:
            output.say(f"plan {plan_id}: promote requested; the runner moves on at its next look")

    @plan.command("abort")
    def abort_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        wait: bool = typer.Option(False, "--wait"),
        timeout: str | None = typer.Option(None, "--timeout"),
    ) -> None:
        """Stop the plan at its next step boundary and roll back what it switched."""
        from shipdeck.core.services.plans import get_plan
        from shipdeck.core.services.runs import abort

        ctx = context()
        result = abort(ctx, plan_id)
        if wait and result.state == "running":
            limit = parse_span(timeout, "--timeout")
            from shipdeck.core.services.runs import wait_run

            result = wait_run(ctx, plan_id, timeout=limit.total_seconds() if limit else None)
        view = get_plan(ctx, plan_id)
        if output.OPTIONS.machine:
            output.emit({"plan": view.as_dict()})
        elif result.state == "running":
            output.say(f"plan {plan_id}: abort requested; the runner stops at its next step")
        else:
            output.say(f"plan {plan_id} {result.state.replace('_', ' ')}: {result.result}")
