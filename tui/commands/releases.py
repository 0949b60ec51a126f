"""`shipdeck release ...`: record and read immutable releases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.tui import output
from shipdeck.tui.commands.common import context


def _show(rec: ReleaseRecord) -> None:
    output.say(f"{rec.app} {rec.version}  {rec.digest}")
    output.say(f"  commit   {rec.commit}")
    output.say(f"  created  {rec.created_at:%Y-%m-%d %H:%M} UTC by {rec.created_by}")
    for a in rec.manifest.artifacts:
        output.say(f"  artifact {a.name} = {a.resolved or a.uri}")
    for k, v in sorted(rec.manifest.config.items()):
        output.say(f"  config   {k} = {v}")
    if rec.notes:
        output.say(f"  notes    {rec.notes}")


def _config_value(text: str) -> Any:
    """`--config max_tokens=4096` must mean the integer shipdeck.toml would give, or the same
    setting gets another digest and shows up as a config change; anything else stays a string."""
    import math
    import tomllib

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value if isinstance(value, str | bool | int | float) else text


def register(app: typer.Typer) -> None:
    rel = typer.Typer(help="Record and read immutable releases.", no_args_is_help=True)
    app.add_typer(rel, name="release")

    @rel.command("create")
    def create(
        app_name: str = typer.Argument(..., metavar="APP"),
        version: str = typer.Argument(...),
        commit: str | None = typer.Option(
            None, "--commit", help="Git ref (default: HEAD of the app's repo)."
        ),
        artifact: list[str] = typer.Option(
            [], "--artifact", help="NAME=URI (hf://org/model@rev, s3://bucket/key)."
        ),
        config: list[str] = typer.Option(
            [], "--config", help="KEY=VALUE config for this release (VALUE as in TOML: 4096, true)."
        ),
        notes: str = typer.Option("", "--notes"),
    ) -> None:
        """Record an immutable release; prints its digest."""
        from shipdeck.core.services.releases import create_release, parse_pairs

        ctx = context()
        result = create_release(
            ctx,
            app_name,
            version,
            commit=commit,
            artifacts=parse_pairs(artifact, "artifact"),
            config={k: _config_value(v) for k, v in parse_pairs(config, "config").items()},
            notes=notes,
        )
        if output.OPTIONS.machine:
            output.emit({"release": result.release.as_dict(), "created": result.created})
        else:
            verb = "recorded" if result.created else "already recorded (identical)"
            output.say(f"{result.release.digest}")
            output.info(f"{app_name} {version} {verb} at {result.release.commit[:12]}")

    @rel.command("list")
    def list_(app_name: str | None = typer.Argument(None, metavar="[APP]")) -> None:
        """List releases, newest first."""
        from shipdeck.core.services.releases import list_releases

        recs = list_releases(context(), app_name)
        if output.OPTIONS.machine:
            output.emit({"releases": [r.as_dict() for r in recs]})
            return
        output.table(
            ["APP", "VERSION", "COMMIT", "CREATED", "BY", "DIGEST"],
            [
                [
                    r.app,
                    r.version,
                    r.commit[:10],
                    f"{r.created_at:%Y-%m-%d %H:%M}",
                    r.created_by,
                    r.digest[7:19],
                ]
                for r in recs
            ],
        )

    @rel.command("show")
    def show(
        app_name: str = typer.Argument(..., metavar="APP"), version: str = typer.Argument(...)
    ) -> None:
        """Show one release's manifest."""
        from shipdeck.core.services.releases import get_release

        rec = get_release(context(), app_name, version)
        if output.OPTIONS.machine:
            output.emit({"release": rec.as_dict()})
        else:
            _show(rec)

    @rel.command("diff")
    def diff(
        app_name: str = typer.Argument(..., metavar="APP"),
        old: str = typer.Argument(..., metavar="FROM"),
        new: str = typer.Argument(..., metavar="TO"),
    ) -> None:
        """Commits, artifact and config changes between two releases."""
        from shipdeck.core.services.releases import diff_releases

        d = diff_releases(context(), app_name, old, new)
        if output.OPTIONS.machine:
            output.emit({"diff": d.as_dict()})
            return
        output.say(f"{app_name} {old} → {new}: {d.headline}")
        for c in d.commits:
            output.say(f"  {c.sha[:10]}  {c.date:%Y-%m-%d}  {c.author}: {c.subject}")
        for c in d.removed:
            output.say(f"  - {c.sha[:10]}  {c.date:%Y-%m-%d}  {c.author}: {c.subject}")
        for a in d.artifacts:
            output.say(f"  {a.summary}")
        for ch in d.config:
            output.say(f"  config {ch.key}: {ch.old!r} → {ch.new!r}")
