"""`shipdeck status -o json` when prod's window is a minute cron, against the same workspace with
a daily window, in the same run.

    python -m bench.windows [--quick] [--runs 7]      # alone: one JSON document on stdout
    python -m bench --only windows

The 50-app workspace (bench/workspace.py) has an allow window `0 8 * * 1-5` for 10h on prod: the
baseline. The measured side is the same workspace and database with that window's cron replaced
by `* * * * *` (1m: always open, so the answer is "no close within the horizon", the most a
window can cost) and by `*/5 * * * *` (1m: open one minute in five). Before windows were answered
by local day (core/domain/occurrences.py), a minute cron cost 16-22 s of CPU per `status`.
Goal: <= 2.0x the daily window, judged on CPU. `extra` carries the pure `window_state` time of
each cron in this process, for people.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from bench.harness import MIN_RUNS, Metric, Options, alternate, cli_env, timed, timed_process
from bench.workspace import OUT, Built, build, workspace_events

STATUS = [sys.executable, "-m", "shipdeck", "-o", "json", "status"]
DAILY = 'cron = "0 8 * * 1-5"\nduration = "10h"'
CRONS = {"minute": "* * * * *", "every5": "*/5 * * * *"}
GOAL = 2.0


def _variant(built: Built, name: str, cron: str) -> Built:
    """The built workspace with prod's window on `cron`: its own shipdeck.toml, the same
    repositories (a symlink) and the same database."""
    root = OUT / f"{built.root.name}-window-{name}"
    root.mkdir(parents=True, exist_ok=True)
    text = (built.root / "shipdeck.toml").read_text(encoding="utf-8")
    assert DAILY in text, "bench/workspace.py changed its window"
    (root / "shipdeck.toml").write_text(
        text.replace(DAILY, f'cron = "{cron}"\nduration = "1m"'), encoding="utf-8"
    )
    if not (root / "repos").exists():
        (root / "repos").symlink_to(built.root / "repos")
    return Built(root, built.url)


def _in_process_ms(cron: str, duration: timedelta) -> float:
    """Median CPU milliseconds of one window_state for a Berlin allow window on `cron`."""
    from shipdeck.core.domain.windows import WindowSpec, window_state

    spec = WindowSpec("w", cron, duration, "Europe/Berlin", "allow")
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)  # the search crosses both 2026 DST changes
    samples = sorted(timed(lambda: window_state([spec], [], now)).cpu for _ in range(MIN_RUNS))
    return round(samples[len(samples) // 2] * 1000, 3)


def metrics(opts: Options) -> list[Metric]:
    store = "postgresql" if opts.database_url else "sqlite"
    built = build(50, workspace_events(opts, 50), opts.database_url)
    daily_env = cli_env(built.root, "alice", built.url)
    timed_process(STATUS, daily_env)  # fills the commit-distance cache both sides read
    daily_ms = _in_process_ms("0 8 * * 1-5", timedelta(hours=10))
    found = []
    for name, cron in CRONS.items():
        env = cli_env(_variant(built, name, cron).root, "alice", built.url)
        ours, base = alternate(
            lambda env=env: timed_process(STATUS, env),
            lambda: timed_process(STATUS, daily_env),
            opts.runs,
        )
        found.append(
            Metric(
                f"windows.status.{name}.{store}",
                f"status -o json, 50 apps, prod window '{cron}' for 1m",
                "the same status with prod's window '0 8 * * 1-5' for 10h",
                ours,
                base,
                ("<=", GOAL),
                by="cpu",
                extra={
                    "window_state_cpu_ms": _in_process_ms(cron, timedelta(minutes=1)),
                    "window_state_cpu_ms_daily": daily_ms,
                },
            )
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized audit log")
    parser.add_argument("--database-url", help="state on this PostgreSQL")
    parser.add_argument("--runs", type=int, default=MIN_RUNS)
    args = parser.parse_args()
    opts = Options(quick=args.quick, database_url=args.database_url, runs=args.runs)
    json.dump({"metrics": [m.as_dict() for m in metrics(opts)]}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
