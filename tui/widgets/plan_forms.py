"""What each plan action asks before it changes anything: one FormScreen a verb, built from the
plan as the person sees it.

Kept apart from the plan screen so the screen is only wiring (which action, then which service)
and each question can be read, and changed, in one place. Every form names the plan and, where
the action cannot be undone, is marked as dangerous.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text

from shipdeck.core.services.plans import OverrideView, PlanView
from shipdeck.tui.widgets.form import Field, FormScreen
from shipdeck.tui.widgets.plan_render import override_line, waves_text
from shipdeck.tui.widgets.plan_text import safe


def items_line(view: PlanView) -> str:
    return ", ".join(f"{i.app} {safe(i.version)}" for i in view.items)


def approve_form(v: PlanView) -> FormScreen:
    body = Text(f"{items_line(v)} in {v.env}.\n", style="bold")
    body.append(
        f"You approve exactly this plan (digest {v.digest[:19]}): any change to it "
        "voids your approval.",
        style="",
    )
    return FormScreen(
        f"Approve plan {v.id}?",
        body,
        [Field("comment", "Comment", placeholder="optional: what you checked")],
        confirm="approve",
    )


def reject_form(v: PlanView) -> FormScreen:
    return FormScreen(
        f"Reject plan {v.id}?",
        Text("A rejected plan stops for good: it is aborted and cannot run."),
        [Field("reason", "Reason", placeholder="why it must not ship", required=True)],
        confirm="reject",
        danger=True,
    )


def duration_problem(value: str) -> str | None:
    """Why `value` is not a duration the core takes (`1h`, `30m`), or None."""
    from shipdeck.core.domain.windows import parse_duration

    try:
        parse_duration(value)
    except ValueError as exc:
        return str(exc)
    return None


def override_form(v: PlanView) -> FormScreen:
    body = Text(
        f"Break-glass: {v.env} may ship this plan outside its window or freeze until the "
        "override ends (at most 24h). It is recorded, announced, and stays open for review "
        "until someone else acknowledges it."
    )
    return FormScreen(
        f"Override for plan {v.id}?",
        body,
        [
            Field("reason", "Reason", placeholder="incident, ticket, who asked", required=True),
            Field("until", "Lasts for", value="1h", required=True, check=duration_problem),
        ],
        confirm="override",
        danger=True,
    )


def run_form(v: PlanView) -> FormScreen:
    body = Text()
    body.append_text(waves_text(v))
    body.append(
        f"\n\nships to {v.env} wave by wave, blue/green; on failure: {v.failure_policy}. "
        "A background runner does it, so the run goes on if you close shipdeck.",
        style="",
    )
    return FormScreen(f"Run plan {v.id} in {v.env}?", body, confirm="run", danger=True)


def queue_form(v: PlanView) -> FormScreen:
    opens = v.window.next_open
    when = f"at {opens:%Y-%m-%d %H:%M} UTC" if opens and not v.window.open else "when it is free"
    body = Text(
        f"{items_line(v)} starts in {v.env} {when}, the next opening of its window. A background "
        "waiter starts it, so it goes on if you close shipdeck; the policy is checked again "
        "then, and if an approval no longer stands it does not start and says why."
    )
    return FormScreen(f"Queue plan {v.id} for its window?", body, confirm="queue")


def unqueue_form(v: PlanView) -> FormScreen:
    return FormScreen(
        f"Take plan {v.id} off the queue?",
        Text(v.queued.sentence if v.queued else ""),
        [Field("reason", "Reason", placeholder="optional: kept with the queue entry")],
        confirm="unqueue",
    )


def abort_form(v: PlanView) -> FormScreen:
    if v.state == "running":
        what = "The runner stops at its next step and rolls back what this run switched."
    else:
        what = "The plan stops for good: it cannot run afterwards."
    return FormScreen(f"Abort plan {v.id}?", Text(what), confirm="abort", danger=True)


def promote_form(v: PlanView) -> FormScreen:
    at = (
        ", ".join(f"{safe(app)} at {w}%" for app, w in v.canary_weights.items())
        or "its first weight"
    )
    return FormScreen(
        f"Promote plan {v.id}'s canary?",
        Text(f"Now {at}. The canary moves past the pause it waits at, on to its next weight "
             "and analysis (it skips none)."),
        confirm="promote",
    )  # fmt: skip


def submit_form(v: PlanView) -> FormScreen:
    need = v.approvals_required
    then = f"it then needs {need} approval(s)" if need else "it is approved at once"
    return FormScreen(
        f"Submit plan {v.id}?",
        Text(f"{items_line(v)} in {v.env}: {then}."),
        confirm="submit",
    )


def ack_form(o: OverrideView, zone: str) -> FormScreen:
    return FormScreen(
        f"Acknowledge override #{o.id}?",
        override_line(o, zone),
        [Field("note", "Note", placeholder="optional: what you checked")],
        confirm="acknowledge",
    )


# The plan actions that ask a form of the plan alone (ack asks about one of its overrides).
PLAN_FORMS: dict[str, Callable[[PlanView], FormScreen]] = {
    "approve": approve_form,
    "reject": reject_form,
    "override": override_form,
    "run": run_form,
    "queue": queue_form,
    "unqueue": unqueue_form,
    "promote": promote_form,
    "abort": abort_form,
    "submit": submit_form,
}
