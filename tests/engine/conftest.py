"""The engine on fakes: RecordingTargets, FakeClock, FakeLauncher and FakeProcesses behind a real
workspace config and a real SQLite database (migrated once per session, copied per test). No
process is started and nothing sleeps, so each test takes milliseconds of engine time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from shipdeck.core.bootstrap import build_context, reconfigure
from shipdeck.core.domain.config import WorkspaceConfig
from shipdeck.core.domain.plan import FailurePolicy
from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter, Event
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import create_plan, get_plan
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import RunResult, run_plan
from shipdeck.core.storage.db import Database
from shipdeck.core.workspace import Workspace, load_config
from tests.fakes.clock import FakeClock
from tests.fakes.git import FixedGit
from tests.fakes.launcher import FakeLauncher
from tests.fakes.processes import FakeProcesses
from tests.fakes.targets import RecordingTargets
from tests.support.workspace import BASIC_TOML, actor_as

LEASE = 600.0  # seconds; see long_lease
APPS = ("model-server", "chat-api", "web")  # BASIC_TOML's three waves, in this order
# web depends on model-server instead: two waves, [model-server], [chat-api, web]
TWO_WAVES = BASIC_TOML.replace(
    'repo = "repos/web"\ndepends_on = ["chat-api"]',
    'repo = "repos/web"\ndepends_on = ["model-server"]',
)


def with_targets(base: str = BASIC_TOML, *, staging: str = "") -> str:
    """`base` with a target for every app in staging and prod (the RecordingTargets stand in
    for them: the ports are never dialled) and `staging` lines added to [environments.staging]."""
    text = base.replace("[environments.staging]\n", f"[environments.staging]\n{staging}\n")
    for n, app in enumerate(APPS):
        for env in ("staging", "prod"):
            port = 20000 + 10 * n + (env == "prod") * 3
            text += (
                f'\n[apps.{app}.targets.{env}]\nadapter = "local"\nport = {port}\n'
                f"blue_port = {port + 1}\ngreen_port = {port + 2}\n"
            )
    return text


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine-db") / "state.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


@dataclass
class Rig:
    """One workspace, its ports faked, and the sentences a test asserts with."""

    root: Path
    db_path: Path
    clock: FakeClock = field(default_factory=FakeClock)
    targets: RecordingTargets = field(default_factory=RecordingTargets)
    processes: FakeProcesses = field(default_factory=FakeProcesses)
    launcher: FakeLauncher = field(init=False)
    base: Context = field(init=False)

    def __post_init__(self) -> None:
        self.launcher = FakeLauncher(self.processes)
        config = self._write(with_targets())
        built = build_context(
            Workspace(self.root, config), database_url=f"sqlite:///{self.db_path}", clock=self.clock
        )
        self.base = replace(
            built,
            git=FixedGit(),
            targets=self.targets.factory,
            launcher=self.launcher,
            processes=self.processes,
        )

    def _write(self, toml: str) -> WorkspaceConfig:
        path = self.root / "shipdeck.toml"
        path.write_text(toml, encoding="utf-8")
        return load_config(path)

    def configure(self, toml: str) -> None:
        """shipdeck.toml changes under the session (the ports stay the fakes)."""
        self.base = reconfigure(self.base, self._write(toml))

    def user(self, name: str = "alice") -> Context:
        return replace(self.base, actor=actor_as(self.base.config, name))

    def plan(
        self,
        version: str,
        apps: Sequence[str] = APPS,
        env: str = "staging",
        failure_policy: FailurePolicy | None = None,
    ) -> str:
        """Releases of `apps` at `version` (made once) and a plan shipping them to `env`."""
        alice = self.user()
        for app in apps:
            create_release(alice, app, version)
        items = [f"{a}@{version}" for a in apps]
        return create_plan(alice, env, items, failure_policy=failure_policy).id

    def state(self, plan_id: str) -> tuple[str, str]:
        p = get_plan(self.user("erin"), plan_id)
        return p.state, p.result

    def events(self, plan_id: str) -> list[Event]:
        return audit_log.list_events(
            self.base, AuditFilter(plan=plan_id), limit=10_000, ascending=True
        )

    def kinds(self, plan_id: str, prefix: str = "") -> list[tuple[str, str | None]]:
        """(kind, app) of the plan's audit events starting with `prefix`, in order."""
        return [(e.kind, e.app) for e in self.events(plan_id) if e.kind.startswith(prefix)]

    def shipped(self, version: str) -> None:
        """`version` of every app live in staging, by a run that succeeded (the starting point)."""
        result = run_plan(self.user(), self.plan(version))
        assert result.state == "succeeded", result.result
        for t in self.targets.by_app.values():
            t.calls.clear()

    def calls(self, app: str | None = None) -> list[tuple[str, str, Any]]:
        return [c for c in self.targets.calls() if app is None or c[0] == app]

    def live(self) -> dict[str, str | None]:
        """Per app, the version its fake target serves now."""
        return {
            app: (t.staged.get(t.live) if t.live else None)
            for app, t in sorted(self.targets.by_app.items())
        }


@pytest.fixture(autouse=True)
def long_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases outlive any test in real time, so the heartbeat (which waits on a real clock) never
    renews one while a test moves the fake clock: a lease expires when the test says so."""
    monkeypatch.setenv("SHIPDECK_LEASE_SECONDS", str(LEASE))


@pytest.fixture
def rig(tmp_path: Path, migrated: Path) -> Iterator[Rig]:
    db_path = tmp_path / "state.db"
    shutil.copyfile(migrated, db_path)
    made = Rig(tmp_path, db_path)
    yield made
    made.base.close()


def journal(result: RunResult) -> list[tuple[str, str, str]]:
    """(app, step, state) of every journal row of the run, in the order they were written."""
    return [(s.app, s.step, s.state) for s in result.steps]
