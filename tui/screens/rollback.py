"""Rolling one app back, from the dashboard or the app view: ask what it would do, confirm (with a
reason where the environment is protected), start it, and watch it.

The question and the answer come from the core (preview_rollback, rollback) in worker threads;
the dashboard marks the app running meanwhile, and the run view opens on the rollback when it is
done. A refusal (permission, lock, nothing to roll back to) is a toast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.form import Field, FormScreen, Values
from shipdeck.tui.widgets.plan_text import safe

if TYPE_CHECKING:
    from shipdeck.core.services.rollbacks import RollbackPreview
    from shipdeck.core.services.runs import RunResult


def rollback_form(p: RollbackPreview) -> FormScreen:
    body = Text()
    body.append(f"{p.app} in {p.env}: {safe(p.from_version)} → {safe(p.to_version)}", style="bold")
    body.append(
        "\n\nSwitches back to the release live before this one: instantly while its colour is "
        "still warm, else by redeploying it. Rollbacks need no approvals or open window (they "
        "are how incidents end); the reason is kept with the record."
    )
    reason = Field(
        "reason",
        "Reason",
        placeholder="incident, ticket, what went wrong",
        required=p.reason_required,
    )
    return FormScreen(
        f"Roll back {p.app} in {p.env}?", body, [reason], confirm="roll back", danger=True
    )


def offer_rollback(screen: ShipdeckScreen, app: str, env: str) -> None:
    """Ask, then start and watch; each step's blocking call runs in a worker thread."""
    ctx = screen.ctx

    def load() -> None:
        from shipdeck.core.services.rollbacks import preview_rollback

        preview = preview_rollback(ctx, app, env)
        screen.app.call_from_thread(ask, preview)

    def ask(preview: RollbackPreview) -> None:
        def answered(values: Values | None) -> None:
            if values is not None:
                screen.run_worker(
                    lambda: start(values["reason"]), thread=True, exit_on_error=False,
                    group="rollback",
                )  # fmt: skip

        screen.app.push_screen(rollback_form(preview), answered)

    def start(reason: str) -> None:
        from shipdeck.core.services.runs import rollback

        screen.app.call_from_thread(screen.notify, f"rolling back {app} in {env}…", markup=False)
        result = rollback(ctx, app, env, reason)
        screen.app.call_from_thread(finished, result)

    def finished(result: RunResult) -> None:
        from shipdeck.tui.screens.run import RunScreen

        screen.notify(
            f"rollback plan {result.plan_id} {result.state.replace('_', ' ')}: {result.result}",
            title="done" if result.ok else "rollback failed",
            severity="information" if result.ok else "error",
            markup=False,
        )
        screen.app.push_screen(RunScreen(result.plan_id))

    screen.run_worker(load, thread=True, exit_on_error=False, group="rollback")
