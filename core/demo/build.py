"""build_demo: a self-contained workspace with real git history, built through the services."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipdeck.core.demo.content import APPS
from shipdeck.core.demo.files import write_workspace_files
from shipdeck.core.demo.history import COMMIT_EVERY, History, schedule
from shipdeck.core.demo.repos import make_repo
from shipdeck.core.errors import UsageError
from shipdeck.core.services.context import Context


def build_demo(
    directory: Path | None = None,
    *,
    progress: Callable[[str], None] = lambda _: None,
    now: datetime | None = None,
) -> Path:
    """Build the demo in `directory` (a new temporary folder without one) and return its path;
    its history ends at `now`."""
    root = (directory or Path(tempfile.mkdtemp(prefix="shipdeck-demo-"))).resolve()
    if (root / "shipdeck.toml").exists():
        raise UsageError(f"--dir {root}: already holds a shipdeck.toml (pick an empty folder)")
    root.mkdir(parents=True, exist_ok=True)
    # The demo's files are written with the umask's modes; its folder keeps everyone else out
    # (a workspace is never world-readable), as mkdtemp's does.
    root.chmod(0o700)
    now = now or datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=30)
    progress(f"building demo workspace in {root}")
    shas = {
        app.name: make_repo(root / "repos" / app.name, app.subjects, start, COMMIT_EVERY)
        for app in APPS
    }
    write_workspace_files(root)
    base = _context(root)
    history = History(root, base, start, progress)
    schedule(history, start, shas)
    history.replay()
    progress(f"demo workspace ready: {root}")
    base.db.dispose()
    return root


def _context(root: Path) -> Context:
    """The workspace's context on an upgraded database, without warm delays, and blue/green
    where the workspace ships a canary: history is replayed in seconds (warm delays are not part
    of what approvers sign; the canary is what the team adopted last, for the user to try)."""
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config

    ws = Workspace(root, load_config(root / "shipdeck.toml"))
    db = Database(ws.database_url())
    db.upgrade()
    db.dispose()
    base = build_context(ws)
    cfg = base.config
    envs = {
        n: replace(e, warm_seconds=0.0, strategy="blue-green") for n, e in cfg.environments.items()
    }
    apps = {
        n: replace(a, targets={e: replace(t, strategy=None) for e, t in a.targets.items()})
        for n, a in cfg.apps.items()
    }
    return replace(base, config=replace(cfg, environments=envs, apps=apps))
