"""Workspace commands: init, config check, db upgrade, demo, tui."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipdeck.core.errors import ConfigError, ExitCode
from shipdeck.tui import output

if TYPE_CHECKING:
    from shipdeck.core.demo import DemoUser
    from shipdeck.core.domain.config import WorkspaceConfig


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Validate the workspace policy.", no_args_is_help=True)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    app.add_typer(config_app, name="config")
    app.add_typer(db_app, name="db")

    @app.command("init")
    def init(
        directory: str = typer.Argument(".", help="Folder to create shipdeck.toml in."),
        shared: str | None = typer.Option(
            None,
            "--shared",
            metavar="GROUP",
            help="Set the workspace up for a Unix group on this host (setgid .shipdeck/).",
        ),
    ) -> None:
        """Write a commented starter shipdeck.toml (and/or share the workspace with a group)."""
        from shipdeck.core.services.admin import init_workspace
        from shipdeck.core.starter import STARTER_TOML

        target = Path(directory) / "shipdeck.toml"
        created = not target.exists()
        done = init_workspace(
            Path(directory), STARTER_TOML, shared_group=shared, read_only=output.OPTIONS.read_only
        )
        if output.OPTIONS.machine:
            output.emit({"created": str(target) if created else None, "done": done})
        else:
            for line in done:
                output.info(line)
            if created:
                output.say(
                    f"wrote {target}; next: 'shipdeck config check' and 'shipdeck db upgrade'"
                )

    @app.command("doctor")
    def doctor_cmd(
        fix: bool = typer.Option(False, "--fix", help="Repair what this user owns."),
    ) -> None:
        """Check the workspace's files: mode, owner, group, and what to fix (exit 4 if any)."""
        from shipdeck.core.services.admin import doctor
        from shipdeck.core.workspace import open_workspace

        ws = open_workspace(output.OPTIONS.workspace)
        found = doctor(ws, fix=fix, read_only=output.OPTIONS.read_only)
        if output.OPTIONS.machine:
            output.emit({"ok": not found, "problems": [f.as_dict() for f in found]})
        else:
            for f in found:
                output.info(f"{f.path} ({f.mode} {f.owner}:{f.group}): {f.problem}; fix: {f.fix}")
            if not found:
                output.say(f"{ws.root}: ok")
        if found:
            raise typer.Exit(int(ExitCode.NOT_PERMITTED))

    @config_app.command("check")
    def check() -> None:
        """Validate shipdeck.toml; each error names the file and the key path."""
        from shipdeck.core.workspace import find_workspace, load_config

        root = find_workspace(output.OPTIONS.workspace)
        try:
            cfg = load_config(root / "shipdeck.toml")
            _check_canaries(root, cfg)
        except ConfigError as exc:
            problems: list[str] = getattr(exc, "all_errors", [exc.message])
            if output.OPTIONS.machine:
                output.emit(
                    {
                        "ok": False,
                        "errors": problems,
                        "error": {
                            "exit_code": 4,
                            "kind": exc.kind,
                            "message": exc.message,
                            "blockers": [],
                        },
                    }
                )
            else:
                for p in problems:
                    output.info(p)
            raise typer.Exit(int(exc.exit_code)) from None
        summary = {
            "ok": True,
            "workspace": str(root),
            "apps": len(cfg.apps),
            "environments": cfg.env_order(),
            "roles": sorted(cfg.roles),
        }
        if output.OPTIONS.machine:
            output.emit(summary)
        else:
            output.say(
                f"{root / 'shipdeck.toml'}: ok ({len(cfg.apps)} apps, environments {' → '.join(cfg.env_order())})"
            )

    @db_app.command("upgrade")
    def upgrade() -> None:
        """Apply database migrations."""
        from shipdeck.core.services.admin import upgrade_database
        from shipdeck.core.workspace import open_workspace
        from shipdeck.tui.commands.common import context

        ws = open_workspace(output.OPTIONS.workspace)
        done = upgrade_database(
            ws, read_only=output.OPTIONS.read_only, context=context, announce=output.info
        )
        if output.OPTIONS.machine:
            output.emit({"database": done.database, "from": done.before, "to": done.after})
        else:
            output.say(f"{done.database}: schema {done.before or 'empty'} → {done.after}")

    @db_app.command("roles")
    def roles(
        persons: list[str] = typer.Argument(None, help="Login roles to create, one per person."),
        owner: str = typer.Option("shipdeck_owner", "--owner", help="Role that owns the tables."),
        people: str = typer.Option(
            "shipdeck_people", "--people", help="Role that holds what a person may do."
        ),
    ) -> None:
        """PostgreSQL: owner and per-person login roles; the audit log append-only for people."""
        from shipdeck.core.services.admin import database_roles
        from shipdeck.tui.commands.common import context

        done = database_roles(context(), tuple(persons or ()), owner=owner, people=people)
        doc = {"owner": done.owner, "people": done.people, "persons": list(done.persons),
               "schema": done.schema}  # fmt: skip
        if output.OPTIONS.machine:
            output.emit(doc)
        else:
            output.say(
                f"schema {done.schema}: owned by {done.owner}; {done.people}: "
                f"{', '.join(done.persons) or 'no new people'} (audit log append-only)"
            )

    demo_app = typer.Typer(
        help="A self-contained demo workspace: build it and open the TUI, or stop its processes."
    )
    app.add_typer(demo_app, name="demo")

    @demo_app.callback(invoke_without_command=True)
    def demo(
        ctx: typer.Context,
        directory: str | None = typer.Option(
            None, "--dir", help="Where to build it (default: a new temp folder)."
        ),
        no_tui: bool = typer.Option(
            False, "--no-tui", help="Build it and print the path; do not open the TUI."
        ),
    ) -> None:
        """Build a self-contained demo workspace and open the TUI on it."""
        if ctx.invoked_subcommand is not None:
            return
        from shipdeck.core.demo import build_demo, demo_users
        from shipdeck.core.workspace import open_workspace

        if not no_tui:  # refuse before spending seconds on a workspace nobody can look at
            from shipdeck.tui.commands.tui import require_terminal

            require_terminal("shipdeck demo", "pass --no-tui to only build the workspace")
        root = build_demo(Path(directory) if directory else None, progress=output.info)
        users = demo_users(open_workspace(root).config)
        if output.OPTIONS.machine:
            output.emit(
                {
                    "workspace": str(root),
                    "users": [
                        {"user": u.user, "name": u.name, "roles": list(u.roles), "does": u.duties}
                        for u in users
                    ],
                    "act_as": f"SHIPDECK_ACTOR=bob shipdeck -w {root} plan list",
                    "stop": f"shipdeck demo stop {root}",
                }
            )
        else:
            output.say(str(root))  # stdout: only the path, for `cd "$(shipdeck demo --no-tui)"`
            _welcome(root, users)
        if not no_tui:
            from shipdeck.tui.commands.tui import open_tui

            open_tui(str(root), read_only=output.OPTIONS.read_only)

    @demo_app.command("stop")
    def demo_stop(
        directory: str | None = typer.Argument(
            None, metavar="[DIR]", help="The demo workspace (default: --workspace or nearest)."
        ),
    ) -> None:
        """Stop the demo's target processes, front proxies and runners. Idempotent."""
        from shipdeck.core.demo import stop_demo

        stopped = stop_demo(
            directory or output.OPTIONS.workspace, read_only=output.OPTIONS.read_only
        )
        if output.OPTIONS.machine:
            output.emit({"stopped": [{"what": p.what, "pid": p.pid} for p in stopped]})
            return
        for p in stopped:
            output.say(f"stopped {p.what} (pid {p.pid})")
        output.say(f"{len(stopped)} process(es) stopped" if stopped else "nothing was running")

    @app.command("tui")
    def tui_cmd() -> None:
        """Open the TUI on the current workspace."""
        from shipdeck.tui.commands.tui import open_tui

        open_tui(output.OPTIONS.workspace, read_only=output.OPTIONS.read_only)


def _welcome(root: Path, users: list[DemoUser]) -> None:
    """Who is who in the demo, how to act as them and how to stop it (stderr: human text)."""
    output.info("")
    output.info(f"Demo workspace: {root}")
    output.info("Demo users (act as one with SHIPDECK_ACTOR):")
    width = max(len(u.user) for u in users)
    for u in users:
        roles = ", ".join(u.roles) or "no role"
        output.info(f"  {u.user.ljust(width)}  {u.name:<14}  {roles:<16}  {u.duties}")
    output.info(f"Act as bob:     SHIPDECK_ACTOR=bob shipdeck -w {root} plan list")
    output.info(f"Stop processes: shipdeck demo stop {root}")


def _check_canaries(root: Path, cfg: WorkspaceConfig) -> None:
    """Canaries on targets that cannot split traffic (the target factory tells), as one
    ConfigError listing them all, like the file's own problems."""
    from shipdeck.core.bootstrap import make_target_factory
    from shipdeck.core.services.canary_targets import canary_problems

    problems = [
        f"{root / 'shipdeck.toml'}: {p}" for p in canary_problems(cfg, make_target_factory(root))
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        err = ConfigError(problems[0] + more)
        err.all_errors = problems  # type: ignore[attr-defined]
        raise err
