"""`shipdeck task ...`: day-2 operations on live targets."""

from __future__ import annotations

import typer

from shipdeck.tui import output
from shipdeck.tui.commands.common import confirm, context, interrupt_stop, parse_instant


def register(app: typer.Typer) -> None:
    task = typer.Typer(help="Day-2 operations: logs, restart, token limits.", no_args_is_help=True)
    app.add_typer(task, name="task")

    @task.command("logs")
    def logs(
        app_name: str = typer.Argument(..., metavar="APP"),
        env: str = typer.Option(..., "--env", "-e"),
        since: str | None = typer.Option(
            None, "--since", help="ISO time or duration back (15m, 2h)."
        ),
        lines: int = typer.Option(100, "--lines", "-n"),
        follow: bool = typer.Option(False, "--follow", "-f", help="Stream new lines until Ctrl-C."),
    ) -> None:
        """Pull logs from the live target (escape sequences stripped)."""
        from shipdeck.core.services.tasks import follow_logs, pull_logs

        ctx = context()
        got = pull_logs(ctx, app_name, env, lines=lines, since=parse_instant(since, "--since"))
        if output.OPTIONS.machine and not follow:
            output.emit({"app": app_name, "env": env, "lines": got})
            return
        for line in got:
            output.say(line)
        if follow:
            with interrupt_stop() as stop:  # Ctrl-C: stop the follower, exit 130
                for line in follow_logs(ctx, app_name, env, stop):
                    output.say(line)

    @task.command("restart")
    def restart(
        app_name: str = typer.Argument(..., metavar="APP"),
        env: str = typer.Option(..., "--env", "-e"),
        reason: str | None = typer.Option(None, "--reason"),
    ) -> None:
        """Restart the live color and check it is healthy."""
        from shipdeck.core.services.tasks import restart as run_restart

        ctx = context()
        confirm(f"Restart {app_name} in {env}?")
        health = run_restart(ctx, app_name, env, reason=reason)
        if output.OPTIONS.machine:
            output.emit(
                {"app": app_name, "env": env, "healthy": health.ok, "detail": health.detail}
            )
        else:
            output.say(f"{app_name}/{env} restarted: {health.detail}")

    @task.command("token-limit")
    def token_limit(
        app_name: str = typer.Argument(..., metavar="APP"),
        env: str = typer.Option(..., "--env", "-e"),
        tpm: int | None = typer.Option(None, "--tpm", help="Tokens per minute."),
        rpm: int | None = typer.Option(None, "--rpm", help="Requests per minute."),
        reason: str | None = typer.Option(None, "--reason"),
    ) -> None:
        """Show token limits, or change them (shows current vs new, asks to confirm)."""
        from shipdeck.core.services.tasks import read_limits, set_limits

        ctx = context()
        current = read_limits(ctx, app_name, env)
        if tpm is None and rpm is None:
            if output.OPTIONS.machine:
                output.emit({"app": app_name, "env": env, "tpm": current.tpm, "rpm": current.rpm})
            else:
                output.say(f"{app_name}/{env}: tpm {current.tpm}, rpm {current.rpm}")
            return
        output.info(
            f"{app_name}/{env}: tpm {current.tpm} → {tpm if tpm is not None else current.tpm}, "
            f"rpm {current.rpm} → {rpm if rpm is not None else current.rpm}"
        )
        confirm(f"Change token limits of {app_name} in {env}?")
        change = set_limits(ctx, app_name, env, tpm=tpm, rpm=rpm, reason=reason)
        if output.OPTIONS.machine:
            output.emit(
                {
                    "app": app_name,
                    "env": env,
                    "old": {"tpm": change.old.tpm, "rpm": change.old.rpm},
                    "new": {"tpm": change.new.tpm, "rpm": change.new.rpm},
                }
            )
        else:
            output.say(f"{app_name}/{env}: tpm {change.new.tpm}, rpm {change.new.rpm}")
