"""What every benchmark reports, and how its two sides are timed.

A metric is a ratio against a baseline measured in the same run, never an absolute time: the two
sides alternate (at least five times each), so background load hits both alike, and each side's
CPU time is kept beside its wall time (a busy machine stretches wall time, not CPU time).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_RUNS = 5
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds and CPU seconds (user + system, this process or its child)."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Options:
    """What `python -m bench` was asked for; every bench reads its sizes from here."""

    quick: bool = False
    database_url: str | None = None
    runs: int = MIN_RUNS

    @property
    def app_counts(self) -> tuple[int, ...]:
        return (50,) if self.quick else (50, 200, 1000)

    @property
    def audit_apps(self) -> int:
        """The size of the workspace whose audit log the audit benches read."""
        return 50 if self.quick else 200

    @property
    def events(self) -> int:
        return 20_000 if self.quick else 1_000_000


@dataclass
class Metric:
    """A measured figure beside its same-run baseline and its goal (`<=` or `>=` the ratio)."""

    name: str
    what: str
    baseline_what: str
    value: list[Sample]
    baseline: list[Sample]
    goal: tuple[str, float]
    by: str = "wall"  # which of wall or cpu the goal is judged on
    extra: dict[str, Any] = field(default_factory=dict)

    def _median(self, samples: list[Sample], part: str) -> float:
        return statistics.median(getattr(s, part) for s in samples)

    def ratio(self, part: str) -> float:
        base = self._median(self.baseline, part)
        return self._median(self.value, part) / base if base > 0 else float("inf")

    @property
    def ok(self) -> bool:
        op, limit = self.goal
        ratio = self.ratio(self.by)
        return ratio <= limit if op == "<=" else ratio >= limit

    def as_dict(self) -> dict[str, Any]:
        parts = {
            part: {
                "value": round(self._median(self.value, part), 6),
                "baseline": round(self._median(self.baseline, part), 6),
                "ratio": round(self.ratio(part), 3),
            }
            for part in ("wall", "cpu")
        }
        return {
            "metric": self.name,
            "what": self.what,
            "baseline_what": self.baseline_what,
            "value": parts[self.by]["value"],
            "baseline": parts[self.by]["baseline"],
            "ratio": parts[self.by]["ratio"],
            "goal": f"{self.goal[0]} {self.goal[1]}",
            "judged_on": self.by,
            "ok": self.ok,
            "runs": len(self.value),
            "wall": parts["wall"],
            "cpu": parts["cpu"],
            **self.extra,
        }


def timed(fn: Callable[[], object]) -> Sample:
    """Run `fn` in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run one child process to completion (it must succeed); its CPU comes from the kernel."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - wall
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def alternate(
    measured: Callable[[], Sample], baseline: Callable[[], Sample], runs: int
) -> tuple[list[Sample], list[Sample]]:
    """Both sides, alternating, at least MIN_RUNS times each."""
    ours: list[Sample] = []
    theirs: list[Sample] = []
    for n in range(max(runs, MIN_RUNS)):
        # Swap which side goes first every other round: neither always gets the warm cache.
        if n % 2:
            theirs.append(baseline())
            ours.append(measured())
        else:
            ours.append(measured())
            theirs.append(baseline())
    return ours, theirs


def cli_env(root: Path, actor: str = "alice", database_url: str | None = None) -> dict[str, str]:
    """The environment a benchmarked `shipdeck` process runs with."""
    env = {
        **os.environ,
        "SHIPDECK_WORKSPACE": str(root),
        "SHIPDECK_ACTOR": actor,
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    if database_url:
        env["SHIPDECK_DATABASE_URL"] = database_url
    return env
