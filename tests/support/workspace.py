"""Real workspaces for tests: git repositories with known histories, a database, a context per user."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipdeck.core.bootstrap import build_context
from shipdeck.core.demo import make_repo
from shipdeck.core.domain.config import WorkspaceConfig
from shipdeck.core.services.context import Actor, Context, SystemClock, resolve_actor
from shipdeck.core.workspace import Workspace, load_config

PG_ENV = "SHIPDECK_TEST_POSTGRES_URL"
PG_SKIP = f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test); .ci/run sets it"


class FixedClock(SystemClock):
    """Wall time stands still until the test moves it; waits are real (the targets' processes
    live in real time). tests/fakes/clock.py has a clock whose waits are fake too."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A private schema on the test server, dropped afterwards: parallel tests never collide."""
    from sqlalchemy import create_engine, text

    from shipdeck.core.storage.db import normalise_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BASIC_TOML = """
[workspace]
name = "test"

[identity]
allow_env_actor = true
delegators = ["*"]

[roles.release-managers]
users = ["alice"]
permissions = ["*"]

[roles.approvers]
users = ["bob", "carol"]
permissions = ["plan.approve", "plan.check"]

[roles.auditors]
users = ["erin"]
permissions = []

[environments.staging]

[environments.prod]
requires_previous = true
approvals = { required = 2, roles = ["approvers"] }
checklist = ["Release notes reviewed"]
override_roles = ["release-managers"]

[apps.model-server]
repo = "repos/model-server"

[apps.chat-api]
repo = "repos/chat-api"
depends_on = ["model-server"]
config = { max_tokens = 4096 }

[apps.web]
repo = "repos/web"
depends_on = ["chat-api"]
"""


def actor_as(config: WorkspaceConfig, name: str) -> Actor:
    """`name`, delegated as the suite's workspaces allow, with the OS user fixed to "tester" so
    what tests record and render does not depend on the machine's user."""
    return replace(resolve_actor(config, {"SHIPDECK_ACTOR": name}), os_user="tester")


class WorkspaceFixture:
    """A workspace on disk plus helpers to act in it as a named user."""

    def __init__(self, root: Path, db_url: str, clock: FixedClock) -> None:
        self.root = root
        self.db_url = db_url
        self.clock = clock
        self.shas: dict[str, list[str]] = {}
        self._base: Context | None = None

    def repo(self, app: str, commits: int, start: datetime | None = None) -> list[str]:
        subjects = tuple(f"{app} change {i}" for i in range(commits))
        start = start or datetime(2026, 10, 1, tzinfo=UTC)
        self.shas[app] = make_repo(self.root / "repos" / app, subjects, start, timedelta(hours=1))
        return self.shas[app]

    def write_config(self, toml: str) -> None:
        (self.root / "shipdeck.toml").write_text(toml, encoding="utf-8")
        self._base = None

    def upgrade(self) -> None:
        from shipdeck.core.storage.db import Database

        db = Database(self.db_url)
        db.upgrade()
        db.dispose()

    @property
    def base(self) -> Context:
        if self._base is None:
            ws = Workspace(self.root, load_config(self.root / "shipdeck.toml"))
            self._base = build_context(ws, database_url=self.db_url, clock=self.clock)
        return self._base

    def as_user(self, name: str, read_only: bool = False) -> Context:
        return replace(self.base, actor=actor_as(self.base.config, name), read_only=read_only)

    def env(self, actor: str = "alice") -> dict[str, str]:
        """Environment for running the real `shipdeck` CLI against this workspace."""
        return {
            **os.environ,
            "SHIPDECK_WORKSPACE": str(self.root),
            "SHIPDECK_DATABASE_URL": self.db_url,
            "SHIPDECK_ACTOR": actor,
            "NO_COLOR": "1",
        }

    def close(self) -> None:
        if self._base is not None:
            self._base.db.dispose()


def three_apps(
    root: Path, db_url: str, clock: FixedClock, toml: str = BASIC_TOML
) -> WorkspaceFixture:
    """model-server, chat-api and web with real repositories of 5, 8 and 3 commits, `toml` as
    the config, database migrated: the `ws` fixture and the TUI scenario both start from it."""
    ws = WorkspaceFixture(root, db_url, clock)
    ws.repo("model-server", 5)
    ws.repo("chat-api", 8)
    ws.repo("web", 3)
    ws.write_config(toml)
    ws.upgrade()
    return ws
