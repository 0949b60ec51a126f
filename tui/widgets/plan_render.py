"""How one plan reads on its screen: waves, status, approvals, overrides, the run journal and
checklist items, each a pure function from the core's views to rich Text.

Pure so the plan screen stays wiring (load, show, act) and so the run confirmation and the ack
form show a plan's waves and an override in the very words of the plan screen. Everything from
people and targets passes through `safe` (plan_text): `[bold]` in a comment shows as typed.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from shipdeck.core.domain.plan import PRE_RUN
from shipdeck.core.services.plan_history import PlanHistory
from shipdeck.core.services.plans import ApprovalView, ChecklistView, OverrideView, PlanView
from shipdeck.tui.widgets.plan_text import (
    clock,
    elapsed,
    history_lines,
    safe,
    state_text,
    when,
)


def waves_text(view: PlanView) -> Text:
    """Waves top to bottom, each wave's apps side by side: the order the run will follow."""
    versions = {i.app: safe(i.version) for i in view.items}
    text = Text()
    for n, wave in enumerate(view.waves, 1):
        if n > 1:
            text.append("\n↓\n", style="dim")
        text.append(f"{n} ", style="bold cyan")
        for k, app in enumerate(wave):
            if k:
                text.append(" · ", style="dim")
            text.append(app, style="bold")
            text.append(f" {versions.get(app, '?')}")
    return text


def status_text(view: PlanView, zone: str = "UTC", history: PlanHistory | None = None) -> Text:
    """Why it cannot run (one sentence per blocker), that it can, or how the run went."""
    text = Text()
    if view.state in PRE_RUN:
        lines = [Text.assemble(("✗ ", "bold red"), safe(b.message)) for b in view.blockers]
        if view.state == "draft":
            hint = "draft: submit it (S) to ask for approvals, or edit it (e)"
            lines.insert(0, Text(hint, style="bold"))
        elif not view.blockers:
            lines.append(Text("✓ nothing blocks it: it may run now", style="bold green"))
        lines += [  # model scan findings this environment lets through
            Text.assemble(("! ", "bold yellow"), safe(w.message)) for w in view.warnings
        ]
        if view.queued is not None:
            style = "bold cyan" if view.queued.waiting and not view.queued.waiter_gone else "yellow"
            lines.append(Text.assemble(("⏲ ", style), safe(view.queued.sentence)))
        return Text("\n").join(lines)
    text.append_text(state_text(view.state))
    if view.started_at is not None:
        end = view.finished_at
        took = elapsed(end - view.started_at) if end else ""
        text.append(f"  started {when(view.started_at, zone)}", style="dim")
        if end is not None:
            text.append(f", took {took}", style="dim")
    for app, weight in view.canary_weights.items():
        text.append(f"\ncanary {safe(app)} at {weight}% of traffic", style="magenta")
    if view.abort_requested_by:
        text.append(f"\nabort requested by {safe(view.abort_requested_by)}", style="bold yellow")
    if history is not None and (history.rollback or history.superseded):
        text.append_text(history_lines(history, view.result, zone))
        if history.superseded:
            text.append("\no opens the later plan", style="dim italic")
    elif view.result:
        text.append("\n")
        text.append(safe(view.result))
    return text


def approval_line(a: ApprovalView, zone: str = "UTC") -> Text:
    text = Text()
    if a.decision == "reject":
        text.append("✗ ", style="bold red")
        text.append(safe(a.by), style="bold")
        text.append(f" rejected {when(a.at, zone)}", style="dim")
        text.append(f": {safe(a.comment)}")
        return text
    text.append("✓ " if a.current else "~ ", style="bold green" if a.current else "yellow")
    text.append(safe(a.by), style="bold")
    text.append(f" {when(a.at, zone)}", style="dim")
    if a.comment:
        text.append(f"  “{safe(a.comment)}”")
    if not a.current:
        text.append("  stale: the plan changed after this approval", style="yellow")
    return text


def override_line(o: OverrideView, zone: str = "UTC") -> Text:
    text = Text()
    text.append(f"#{o.id} ", style="bold")
    text.append(safe(o.by), style="bold")
    text.append(f" until {when(o.until, zone)}", style="dim")
    text.append("  active" if o.active else "  expired", style="bold yellow" if o.active else "dim")
    if o.acknowledged_by:
        text.append(f"  reviewed by {safe(o.acknowledged_by)}", style="green")
    else:
        text.append("  review open", style="bold magenta")
    text.append(f": {safe(o.reason)}")
    return text


def rows(pairs: list[tuple[str, RenderableType]]) -> Table:
    """Label and content side by side; long sentences wrap under their content, not the label."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, width=9)
    grid.add_column(ratio=1)
    for label, content in pairs:
        grid.add_row(Text(label), content)
    return grid


def top_part(
    view: PlanView, zone: str = "UTC", history: PlanHistory | None = None
) -> RenderableType:
    window = Text(
        "● " if view.window.open else "○ ", style="green" if view.window.open else "yellow"
    )
    window.append(safe(view.window_text))
    return rows(
        [
            ("waves", waves_text(view)),
            ("window", window),
            ("status", status_text(view, zone, history)),
        ]
    )


def rest_part(
    view: PlanView, zone: str = "UTC", history: PlanHistory | None = None
) -> RenderableType:
    need = view.approvals_required
    rollback = history.rollback if history is not None else None
    if rollback is not None:
        head = Text(safe(rollback.approvals_note), style="dim")
    elif need:
        head = Text(
            f"{need} needed from {' or '.join(view.approval_roles) or 'anyone'}", style="dim"
        )
    else:
        head = Text("none needed", style="dim")
    approvals = Text("\n").join([head, *(approval_line(a, zone) for a in view.approvals)])
    pairs: list[tuple[str, RenderableType]] = [("approvals", approvals)]
    if view.overrides:
        pairs.append(("overrides", Text("\n").join(override_line(o, zone) for o in view.overrides)))
    if view.steps:
        first, last = view.steps[0].at, view.steps[-1].at
        journal = Text(
            f"{len(view.steps)} steps, {clock(first, zone)} to {clock(last, zone)}", style="dim"
        )
        journal.append("  w watches the run", style="")
        pairs.append(("journal", journal))
    return Group(rows(pairs))


def checklist_prompt(c: ChecklistView, zone: str = "UTC") -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if c.done:
        text.append("[x] ", style="bold green")
    elif c.ok is False:
        text.append("[!] ", style="bold red")
    else:
        text.append("[ ] ", style="bold yellow")
    text.append(safe(c.text))
    if c.command:
        text.append(f"  runs {safe(' '.join(c.command))}", style="dim")
    if c.by:
        text.append(
            f"  {'ticked' if c.done else 'failed'} by {safe(c.by)} {when(c.at, zone)}", style="dim"
        )
    return text


def summary_text(view: PlanView, zone: str = "UTC") -> Text:
    """The two lines above the plan: what it is, where, its state; who drafted it, and when."""
    summary = Text(no_wrap=True, overflow="ellipsis")
    summary.append(f"{view.id}  ", style="bold")
    summary.append(f"{view.env}  ", style="bold")
    summary.append_text(state_text(view.state))
    summary.append(f"  {safe(view.name)}")
    summary.append(
        f"\ndrafted by {safe(view.created_by)} {when(view.created_at, zone)} {zone} (all times)"
        f" · on failure {view.failure_policy} · digest {view.digest.removeprefix('sha256:')[:12]}",
        style="dim",
    )
    return summary


def checklist_title(view: PlanView, history: PlanHistory, may_tick: bool) -> Text:
    """The checklist's heading, with why there is none or how to tick one."""
    title = Text("checklist", style="dim")
    if history.rollback is not None:
        title.append("  not asked of a rollback (it is how incidents end)", style="dim")
    elif not view.checklist:
        title.append("  none for this plan", style="dim")
    elif may_tick:
        title.append("  space ticks the highlighted item", style="dim italic")
    return title
