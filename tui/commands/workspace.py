"""Workspace commands: init, config check, db upgrade, demo, tui."""

from __future__ import annotations

from pathlib import Path

import typer

from shipdeck.core.errors import ConfigError, UsageError
from shipdeck.tui import output


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Validate the workspace policy.", no_args_is_help=True)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    app.add_typer(config_app, name="config")
    app.add_typer(db_app, name="db")

    @app.command("init")
    def init(
        directory: str = typer.Argument(".", help="Folder to create shipdeck.toml in."),
    ) -> None:
        """Write a commented starter shipdeck.toml."""
        from shipdeck.core.starter import STARTER_TOML

        target = Path(directory) / "shipdeck.toml"
        if target.exists():
            raise UsageError(f"{target}: already exists (not overwritten)")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(STARTER_TOML, encoding="utf-8")
        if output.OPTIONS.machine:
            output.emit({"created": str(target)})
        else:
            output.say(f"wrote {target}; next: 'shipdeck config check' and 'shipdeck db upgrade'")

    @config_app.command("check")
    def check() -> None:
        """Validate shipdeck.toml; each error names the file and the key path."""
        from shipdeck.core.workspace import find_workspace, load_config

        root = find_workspace(output.OPTIONS.workspace)
        try:
            cfg = load_config(root / "shipdeck.toml")
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
        from shipdeck.core.storage.db import Database
        from shipdeck.core.workspace import open_workspace

        ws = open_workspace(output.OPTIONS.workspace)
        db = Database(ws.database_url())
        before = db.schema_revision()
        db.upgrade()
        after = db.schema_revision()
        if output.OPTIONS.machine:
            output.emit({"database": db.display_url, "from": before, "to": after})
        else:
            output.say(f"{db.display_url}: schema {before or 'empty'} → {after}")

    @app.command("demo")
    def demo(
        directory: str | None = typer.Option(
            None, "--dir", help="Where to build it (default: a new temp folder)."
        ),
        no_tui: bool = typer.Option(
            False, "--no-tui", help="Build it and print the path; do not open the TUI."
        ),
    ) -> None:
        """Build a self-contained demo workspace and open the TUI on it."""
        from shipdeck.core.demo import build_demo

        if not no_tui:  # refuse before spending seconds on a workspace nobody can look at
            from shipdeck.tui.commands.tui import require_terminal

            require_terminal("shipdeck demo", "pass --no-tui to only build the workspace")

        root = build_demo(Path(directory) if directory else None, progress=output.info)
        if output.OPTIONS.machine:
            output.emit({"workspace": str(root)})
        else:
            output.say(str(root))
        if not no_tui:
            from shipdeck.tui.commands.tui import open_tui

            open_tui(str(root), read_only=output.OPTIONS.read_only)

    @app.command("tui")
    def tui_cmd() -> None:
        """Open the TUI on the current workspace."""
        from shipdeck.tui.commands.tui import open_tui

        open_tui(output.OPTIONS.workspace, read_only=output.OPTIONS.read_only)
