"""`shipdeck status`: what is deployed where, versus the latest release."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from shipdeck.core.services.status import Cell
from shipdeck.tui import output
from shipdeck.tui.commands.common import context


def _notes(cell: Cell) -> str:
    notes = []
    if cell.lock:
        notes.append(f"locked by {cell.lock.holder}")
    if cell.canary_weight is not None:
        notes.append(f"canary at {cell.canary_weight}%")
    if cell.queued:
        when = f"{cell.queued.starts_at:%Y-%m-%d %H:%M} UTC" if cell.queued.starts_at else "never"
        gone = ", waiter gone" if cell.queued.waiter_gone else ""
        notes.append(f"queued: plan {cell.queued.plan_id} at {when}{gone}")
    if cell.drift:
        notes.append(f"DRIFT (live {cell.live_color or 'none'})")
    if cell.last_outcome and cell.last_outcome != "succeeded":
        notes.append(f"last run {cell.last_outcome}")
    notes.extend(a.summary for a in cell.artifacts)
    if cell.config:
        notes.append("config: " + ", ".join(c.key for c in cell.config))
    if not cell.window.open:
        notes.append("window closed")
    return "; ".join(notes)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        env: str | None = typer.Option(None, "--env", "-e", help="Only this environment."),
        app_name: str | None = typer.Option(None, "--app", "-a", help="Only this app."),
        commits: bool = typer.Option(
            False, "--commits", help="List the commits each env is behind."
        ),
    ) -> None:
        """Per app and environment: deployed vs latest release, commits behind, drift, window, lock."""
        from shipdeck.core.services.status import status as compute
        from shipdeck.core.services.status import status_document

        ctx = context()
        apps = compute(ctx, env=env, app=app_name, with_commits=commits)
        if output.OPTIONS.machine:
            output.emit(status_document(ctx.config.name, apps))
            return
        rows = []
        for a in apps:
            for c in a.cells:
                d = c.deployed
                rows.append(
                    [
                        a.app,
                        c.env,
                        d.version if d else "-",
                        (d.color or "-") if d else "-",
                        c.latest.version if c.latest else "-",
                        "-" if c.commits_behind is None else str(c.commits_behind),
                        _notes(c),
                    ]
                )
        output.table(["APP", "ENV", "DEPLOYED", "COLOR", "LATEST", "BEHIND", "NOTES"], rows)
        if commits:
            for a in apps:
                for c in a.cells:
                    for commit in c.commits:
                        output.say(
                            output.clip(
                                f"{a.app}/{c.env}  {commit.sha[:10]}  {commit.date:%Y-%m-%d}  "
                                f"{commit.author}: {commit.subject}"
                            )
                        )
