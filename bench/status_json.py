"""`shipdeck status -o json` as a process, warm and cold, against importing sqlmodel.

    python -m bench --only status

Warm: the commit-distance cache is filled (the usual case). Cold: the cache is emptied before each
measured run (outside the timing), so every app and environment needs its distance computed.
The baseline is `python -c "import sqlmodel"`: what any shipdeck command pays before its own work.
Measured at each app count (50, 200, 1000; --quick: 50) on SQLite, or on --database-url.
"""

from __future__ import annotations

import sys

from bench.harness import Metric, Options, Sample, alternate, cli_env, timed_process
from bench.workspace import Built, build, workspace_events

STATUS = [sys.executable, "-m", "shipdeck", "-o", "json", "status"]
BASELINE = [sys.executable, "-c", "import sqlmodel"]
WARM_GOAL = {50: 1.5, 200: 1.5, 1000: 2.0}
COLD_GOAL = {50: 2.0, 200: 2.0, 1000: 3.0}
PG_WARM_GOAL = 1.8


def empty_distance_cache(built: Built) -> None:
    from sqlalchemy import text

    from shipdeck.core.storage.db import Database

    db = Database(built.url)
    with db.write() as conn:
        conn.execute(text("DELETE FROM commit_distance"))
    db.dispose()


def metrics(opts: Options) -> list[Metric]:
    found: list[Metric] = []
    store = "postgresql" if opts.database_url else "sqlite"
    for apps in opts.app_counts:
        built = build(apps, workspace_events(opts, apps), opts.database_url)
        env = cli_env(built.root, "alice", built.url)
        timed_process(STATUS, env)  # fills the cache the warm runs read
        warm, base = alternate(
            lambda env=env: timed_process(STATUS, env), lambda: timed_process(BASELINE), opts.runs
        )
        goal = PG_WARM_GOAL if opts.database_url else WARM_GOAL[apps]
        found.append(
            Metric(
                f"status.warm.{store}.{apps}apps",
                f"status -o json, warm, {apps} apps x 3 envs",
                "python -c 'import sqlmodel'",
                warm,
                base,
                ("<=", goal),
            )
        )

        def cold(built: Built = built, env: dict[str, str] = env) -> Sample:
            empty_distance_cache(built)
            return timed_process(STATUS, env)

        cold_runs, base = alternate(cold, lambda: timed_process(BASELINE), opts.runs)
        found.append(
            Metric(
                f"status.cold.{store}.{apps}apps",
                f"status -o json, empty distance cache, {apps} apps x 3 envs",
                "python -c 'import sqlmodel'",
                cold_runs,
                base,
                ("<=", COLD_GOAL[apps]),
            )
        )
    return found
