"""How much does the run engine add on top of the target steps themselves?

    cd /work/main && python -m bench.orchestration [--apps 50] [--waves 5] [--step 0.2]
                                                  [--database-url URL] [--runs 3]

A 50-app plan in 5 waves (each app of wave w depends on one app of wave w-1) runs through the
real engine (start_run + execute_run: lease, journal rows before and after every step, deployment
records, audit events, SQLite by default) against a Target whose every mutating call and health
check sleeps `--step` seconds. Per app and wave the engine makes 4 such calls (stage, health,
switch, verify), and finalize makes one more after the last wave, so the critical path is
(4 x waves + 1) x step. Prints wall time / critical path; goal <= 1.10.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shipdeck.core.ports import Color, Health, ReleaseSpec


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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orchestration")
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--step", type=float, default=0.2, help="seconds per target call")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()

    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.demo import make_repo
    from shipdeck.core.services.context import SystemClock, resolve_actor
    from shipdeck.core.services.plans import create_plan
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.services.runs import execute_run, start_run
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config

    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shipdeck-orch-")))
        make_repo(
            root / "repos" / "one", ("one",), datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1)
        )
        (root / "shipdeck.toml").write_text(bench_toml(args.apps, args.waves))
        url = f"sqlite:///{root / 'state.db'}"
        if args.database_url:  # a private schema, dropped afterwards: never touch shared tables
            from tests.support.workspace import postgres_schema

            url = stack.enter_context(postgres_schema(args.database_url))
        db = Database(url)
        db.upgrade()
        db.dispose()
        targets: dict[str, SleepyTarget] = {}

        def factory(app: str, env: str, adapter: str, settings: Any) -> SleepyTarget:
            return targets.setdefault(app, SleepyTarget(args.step))

        base = build_context(Workspace(root, load_config(root / "shipdeck.toml")), database_url=url)
        ctx = replace(
            base,
            targets=factory,
            clock=SystemClock(),
            actor=resolve_actor(base.config, {"USER": "bench", "SHIPDECK_ACTOR": "alice"}),
        )
        names = sorted(ctx.config.apps)
        ratios, walls = [], []
        for run in range(args.runs + 1):  # run 0 puts something live, so finalize has work
            for a in names:
                create_release(ctx, a, f"{run}.0")
            plan = create_plan(ctx, "staging", [f"{a}@{run}.0" for a in names])
            ticket = start_run(ctx, plan.id)
            t0 = time.perf_counter()
            result = execute_run(ctx, ticket)
            wall = time.perf_counter() - t0
            if result.state != "succeeded":
                print(f"run {run} {result.state}: {result.result}", file=sys.stderr)
                return 1
            if run == 0:
                continue
            waves = len(plan.waves)
            critical = (4 * waves + 1) * args.step
            walls.append(wall)
            ratios.append(wall / critical)
        base.db.dispose()
    critical = (4 * args.waves + 1) * args.step
    db_name = "postgresql" if url.startswith("postgres") else "sqlite"
    print(
        f"orchestration: {args.apps} apps in {args.waves} waves, {args.step * 1000:.0f} ms per "
        f"target call, {db_name}, {args.runs} runs"
    )
    print(f"critical path {critical:.2f} s; wall median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")  # fmt: skip
    print(f"wall / critical path: median {statistics.median(ratios):.3f}, max {max(ratios):.3f} "
          f"(goal <= 1.10)")  # fmt: skip
    return 0 if statistics.median(ratios) <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
