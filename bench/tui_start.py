"""Start to the first dashboard frame with data, against a bare Textual app's first frame.

    python -m bench --only tui_start

Each sample is a fresh Python process, timed from outside (wall and CPU): shipdeck's process
imports the TUI, opens the workspace as `shipdeck tui` does (tui.app.start_app), runs the app
headless at 120x40 and exits when the dashboard shows its data and has painted; the baseline
process, in the same environment, starts a bare Textual app with one Static at the same size and
exits after its first frame. Measured at each app count (50, 200, 1000; --quick: 50). Goals: <= 2.0x the bare app, and
(absolute, in `extra`) the median first frame <= 1.0 s at 200 apps and <= 1.5 s at 1000.
"""

from __future__ import annotations

import statistics
import sys

from bench.harness import Metric, Options, alternate, cli_env, timed_process
from bench.workspace import build, workspace_events

SHIPDECK = r"""
import asyncio
from shipdeck.tui.app import start_app

async def main():
    app = start_app()  # what `shipdeck tui` runs before app.run()
    async with app.run_test(size=(120, 40)) as pilot:
        while not getattr(app.screen, "loaded", False):
            await asyncio.sleep(0.002)
        await pilot.pause()  # the frame with the data is painted
        assert app.screen.query_one("#matrix").row_count > 0

asyncio.run(main())
"""

BARE = r"""
import asyncio
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("hello")

async def main():
    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()

asyncio.run(main())
"""

ABSOLUTE_GOAL = {50: 1.0, 200: 1.0, 1000: 1.5}


def metrics(opts: Options) -> list[Metric]:
    found: list[Metric] = []
    for apps in opts.app_counts:
        built = build(apps, workspace_events(opts, apps), opts.database_url)
        env = cli_env(built.root, "alice", built.url)
        ours, base = alternate(
            lambda env=env: timed_process([sys.executable, "-c", SHIPDECK], env),
            # the same environment (NO_COLOR among it: Textual's monochrome filter then runs on
            # both sides), so the two differ only in what they do
            lambda env=env: timed_process([sys.executable, "-c", BARE], env),
            opts.runs,
        )
        median = statistics.median(s.wall for s in ours)
        found.append(
            Metric(
                f"tui.start.{apps}apps",
                f"TUI start to first dashboard frame, {apps} apps x 3 envs",
                "a bare Textual app's first frame",
                ours,
                base,
                ("<=", 2.0),
                extra={
                    "absolute_s": round(median, 3),
                    "absolute_goal_s": ABSOLUTE_GOAL[apps],
                    "absolute_ok": median <= ABSOLUTE_GOAL[apps],
                },
            )
        )
    return found
