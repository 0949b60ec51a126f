"""How much does the run engine add on top of the target steps themselves?

    python -m bench --only orchestration

A 50-app plan in 5 waves and a 200-app plan in 10 (--quick: 20 apps in 4; each app of wave w
depends on one app of wave w-1) runs through the real engine (start_run + execute_run: lease,
journal rows before and after every step, deployment records, audit events; SQLite, or
--database-url) against a Target whose every mutating call and health check sleeps `step`. Per app and wave the engine makes 4 such calls (stage, health,
switch, verify), and finalize makes one more after the last wave, so the critical path is
(4 x waves + 1) x step. The figure is wall time / critical path (goals in GOALS).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import Metric, Options, Sample
from bench.workspace import as_actor
from shipdeck.core.ports import Color, Health, ReleaseSpec

if TYPE_CHECKING:
    from shipdeck.core.services.context import Context


class SleepyTarget:
    """A Target whose real work is a sleep: what is left of the wall time is the engine's."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.live: Color | None = None
        self.staged: dict[str, str] = {}
        self.epoch = 0
        self.lock = threading.Lock()

    def _fence(self, epoch: int) -> None:
        with self.lock:
            if epoch < self.epoch:
                from shipdeck.core.ports import StaleEpoch

                raise StaleEpoch(f"bench target: stale epoch {epoch}")
            self.epoch = epoch

    def live_color(self) -> Color | None:
        return self.live

    def staged_version(self, color: Color) -> str | None:
        return self.staged.get(color)

    def endpoint(self) -> str | None:
        return None

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        self._fence(epoch)
        time.sleep(self.step)
        self.staged[color] = release.version

    def health(self, color: Color) -> Health:
        time.sleep(self.step)
        return Health(True, "ok", self.staged.get(color))

    def switch(self, color: Color, epoch: int) -> None:
        self._fence(epoch)
        time.sleep(self.step)
        self.live = color

    def stop_idle(self, color: Color, epoch: int) -> None:
        self._fence(epoch)
        time.sleep(self.step)
        self.staged.pop(color, None)

    def restart(self, epoch: int) -> None:
        self._fence(epoch)

    def close(self) -> None:
        return None


def bench_toml(apps: int, waves: int) -> str:
    per = apps // waves
    lines = [
        '[workspace]\nname = "bench"\n',
        '[identity]\nallow_env_actor = true\ndelegators = ["*"]\n',
        '[roles.release-managers]\nusers = ["alice"]\npermissions = ["*"]\n',
        "[environments.staging]\n",
    ]
    for i in range(apps):
        wave = i // per
        deps = f'["app{(wave - 1) * per + i % per:02d}"]' if wave else "[]"
        lines.append(
            f'[apps.app{i:02d}]\nrepo = "repos/one"\ndepends_on = {deps}\n'
            f'[apps.app{i:02d}.targets.staging]\nadapter = "local"\nport = {20000 + 3 * i}\n'
        )
    return "\n".join(lines)


@contextlib.contextmanager
def engine_ctx(
    toml: str, database_url: str | None, factory: Callable[..., Any], **also: Any
) -> Iterator[Context]:
    """alice's Context on a new workspace (one git repository, `toml`, SQLite or a private
    PostgreSQL schema dropped afterwards), with targets from `factory` and the real clock."""
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.demo import make_repo
    from shipdeck.core.services.context import SystemClock
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config

    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shipdeck-bench-")))
        make_repo(
            root / "repos" / "one", ("one",), datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1)
        )
        (root / "shipdeck.toml").write_text(toml)
        url = f"sqlite:///{root / 'state.db'}"
        if database_url:  # a private schema, dropped afterwards: never touch shared tables
            from tests.support.workspace import postgres_schema

            url = stack.enter_context(postgres_schema(database_url))
        db = Database(url)
        db.upgrade()
        db.dispose()
        base = build_context(Workspace(root, load_config(root / "shipdeck.toml")), database_url=url)
        try:
            yield replace(as_actor(base, "alice"), targets=factory, clock=SystemClock(), **also)
        finally:
            base.db.dispose()


def measure(apps: int, waves: int, step: float, runs: int, database_url: str | None) -> Metric:
    """`runs` runs of one plan after a first that puts everything live (so finalize has work)."""
    from shipdeck.core.services.plans import create_plan
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.services.runs import execute_run, start_run

    samples: list[Sample] = []
    targets: dict[str, SleepyTarget] = {}

    def factory(app: str, env: str, adapter: str, settings: Any) -> SleepyTarget:
        return targets.setdefault(app, SleepyTarget(step))

    with engine_ctx(bench_toml(apps, waves), database_url, factory) as ctx:
        names = sorted(ctx.config.apps)
        for run in range(runs + 1):
            for a in names:
                create_release(ctx, a, f"{run}.0")
            plan = create_plan(ctx, "staging", [f"{a}@{run}.0" for a in names])
            ticket = start_run(ctx, plan.id)
            t0, cpu0 = time.perf_counter(), time.process_time()
            result = execute_run(ctx, ticket)
            sample = Sample(time.perf_counter() - t0, time.process_time() - cpu0)
            if result.state != "succeeded":
                raise RuntimeError(f"bench run {run} {result.state}: {result.result}")
            if run:
                samples.append(sample)
    critical = (4 * waves + 1) * step
    store = "postgresql" if database_url else "sqlite"
    return Metric(
        f"orchestration.{store}.{apps}apps-{waves}waves",
        f"a {apps}-app plan in {waves} waves through the real engine, {step * 1000:.0f} ms per target call",
        "the critical path: (4 x waves + 1) target calls",
        samples,
        [Sample(critical, critical)],
        ("<=", GOALS[(store, apps)]),
    )


# (store, apps) -> goal for wall / critical path; quick runs are judged like the 50-app plan.
GOALS = {
    ("sqlite", 20): 1.05,
    ("sqlite", 50): 1.05,
    ("sqlite", 200): 1.08,
    ("postgresql", 20): 1.10,
    ("postgresql", 50): 1.10,
    ("postgresql", 200): 1.12,
}


def metrics(opts: Options) -> list[Metric]:
    shapes = ((20, 4),) if opts.quick else ((50, 5), (200, 10))
    step = 0.05 if opts.quick else 0.2
    return [measure(a, w, step, opts.runs, opts.database_url) for a, w in shapes]
