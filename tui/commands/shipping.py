"""`shipdeck deploy`, `rollback`, `reconcile` and `metrics`: the shipping verbs outside a plan's
own life cycle (a deploy and a rollback are one-app plans under the same policy).
"""

from __future__ import annotations

import typer

from shipdeck.tui import output
from shipdeck.tui.commands.common import confirm, context
from shipdeck.tui.commands.runs import finished, run_plan, step_line


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    def deploy_(
        app_name: str = typer.Argument(..., metavar="APP"),
        version: str = typer.Argument(...),
        env: str = typer.Option(..., "--env", "-e"),
        wait: bool = typer.Option(False, "--wait"),
        timeout: str | None = typer.Option(None, "--timeout"),
    ) -> None:
        """A one-app plan under the same policy."""
        from shipdeck.core.errors import BlockedError
        from shipdeck.core.services.runs import deploy_plan

        ctx = context()
        plan_id = deploy_plan(ctx, app_name, version, env)
        try:
            run_plan(ctx, plan_id, wait, timeout)
        except BlockedError as exc:
            raise BlockedError(
                f"deploy plan {plan_id}: {exc.message}", blockers=exc.blockers
            ) from None

    @app.command("rollback")
    def rollback_(
        app_name: str = typer.Argument(..., metavar="APP"),
        env: str = typer.Option(..., "--env", "-e"),
        reason: str = typer.Option("", "--reason"),
    ) -> None:
        """Switch APP back to the release live before the current one (asks first, and wants
        --reason, in a protected environment)."""
        from shipdeck.core.services.plans import get_plan
        from shipdeck.core.services.rollbacks import check_reason, preview_rollback
        from shipdeck.core.services.runs import rollback

        ctx = context()
        ctx.require("rollback", app=app_name, env=env)  # refusal first: exit 4, not 2 or 3
        preview = preview_rollback(ctx, app_name, env)
        check_reason(ctx, env, reason)
        if preview.confirm:
            confirm(preview.question)
        result = rollback(ctx, app_name, env, reason, None if output.OPTIONS.machine else step_line)
        finished(ctx, result, get_plan(ctx, result.plan_id))

    @app.command("reconcile")
    def reconcile_(env: str | None = typer.Option(None, "--env", "-e")) -> None:
        """Finish or roll back runs that were interrupted."""
        from shipdeck.core.services.audit_log import open_intents
        from shipdeck.core.services.runs import reconcile

        ctx = context()
        results = reconcile(ctx, env=env)
        intents = [e for e in open_intents(ctx) if env is None or e.env == env]
        if output.OPTIONS.machine:
            output.emit(
                {
                    "reconciled": [r.as_dict() for r in results],
                    "open_intents": [e.as_dict() for e in intents],
                }
            )
            return
        if not results and not intents:
            output.say("nothing to reconcile")
        for r in results:
            output.say(
                f"plan {r.plan_id} ({r.env}): {r.decision} -> {r.state.replace('_', ' ')}: {r.result}"
            )
        for e in intents:
            where = "/".join(x for x in (e.app, e.env) if x) or "workspace"
            output.say(
                f"intent {e.seq} {e.kind.removesuffix('.intent')} ({where}) by {e.actor} has no "
                "outcome: it may or may not have happened; check it by hand"
            )

    @app.command("metrics")
    def metrics_(
        env: str | None = typer.Option(None, "--env", "-e"),
        days: int = typer.Option(30, "--days"),
    ) -> None:
        """DORA: deployment frequency, lead time, change failure rate, time to restore."""
        from shipdeck.core.services.metrics import metrics

        rows = metrics(context(), env=env, days=days)
        if output.OPTIONS.machine:
            output.emit({"days": days, "environments": [m.as_dict() for m in rows]})
            return

        # One block per environment, in the TUI's words (EnvMetrics.cells): a table would cut them.
        for n, m in enumerate(rows):
            output.say(("\n" if n else "") + f"{m.env}  last {days} days")
            for label, value in [*m.cells().items(), ("failed attempts", str(m.failed_attempts))]:
                output.say(f"  {label:<17}{value}")
