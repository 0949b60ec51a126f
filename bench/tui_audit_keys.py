"""Key press to updated frame on the audit view of a big log.

    python -m bench --only tui_audit_keys

Drives the real app with Pilot at 120x40 on the audit workspace (1,000,000 events; --quick:
20,000): each sample is the time from a key event entering the driver until a frame is composed in
which every visible row holds its event (timestamped where Textual hands the frame to the
terminal; headless, nothing is written after that). 300 x j, 100 x k, 150 x pagedown, 60 x pageup.
An absolute figure: the p95 over all keys, goal < 60 ms (the baseline column is the goal).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from bench.harness import Metric, Options, Sample
from bench.workspace import build, say

GOAL_S = 0.060


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def key_latencies(workspace: str, url: str) -> list[float]:
    from textual import events

    from shipdeck.core.bootstrap import open_context
    from shipdeck.tui.app import ShipdeckApp
    from shipdeck.tui.widgets.audit_view import AuditView

    os.environ["SHIPDECK_ACTOR"] = "alice"
    ctx = open_context(workspace, database_url=url)
    app = ShipdeckApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:

        async def until(condition: Any) -> None:
            while not condition():
                await asyncio.sleep(0.001)

        await until(lambda: getattr(app.screen, "loaded", False))
        t_open = time.perf_counter()
        await pilot.press("a")
        await until(lambda: getattr(app.screen, "loaded", False))
        opened = time.perf_counter() - t_open
        view = app.screen.query_one(AuditView)

        def painted_data() -> bool:
            top = int(view.scroll_y)
            visible = range(top, min(top + view.page_rows, view.shape.total))
            return view.current is not None and all(r in view.rows for r in visible)

        # A frame is composed (render_line called for the changed lines) just before _display;
        # headless, _display then writes nothing, so this is the moment a terminal would update.
        frames: list[float] = []
        display = app._display

        def hook(screen: Any, renderable: Any) -> None:
            if renderable is not None and painted_data():
                frames.append(time.perf_counter())
            display(screen, renderable)

        app._display = hook  # type: ignore[method-assign]

        async def timed(*keys: str, moved: Any = None) -> float:
            """Press (straight into the driver, as a terminal would), wait for the frame in which
            the cursor has moved (`moved(old_cursor)`, default: anywhere) and the rows are there.
            Frames composed for other reasons (a live refresh, a clock tick) do not count."""
            assert app._driver is not None
            before = view.cursor
            check = moved or (lambda old: view.cursor != old)
            frames.clear()
            t0 = time.perf_counter()
            for key in keys:
                app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
            await until(
                lambda: check(before) and bool(frames) and frames[-1] > t0 and painted_data()
            )
            return frames[-1] - t0

        await until(painted_data)
        say(f"audit view: {view.shape.total:,} events, first rows in {opened * 1000:.1f} ms")
        samples: dict[str, list[float]] = {
            "j (down)": [],
            "k (up)": [],
            "pagedown": [],
            "pageup": [],
        }
        for _ in range(300):
            samples["j (down)"].append(await timed("j"))
        for _ in range(100):
            samples["k (up)"].append(await timed("k"))
        for _ in range(150):
            samples["pagedown"].append(await timed("pagedown"))
        for _ in range(60):
            samples["pageup"].append(await timed("pageup"))
        everything = [v for vs in samples.values() for v in vs]
    ctx.db.dispose()
    return everything


def metrics(opts: Options) -> list[Metric]:
    built = build(opts.audit_apps, opts.events, opts.database_url)
    latencies = asyncio.run(key_latencies(str(built.root), built.url))
    p95 = pct(latencies, 0.95)
    return [
        Metric(
            "tui.audit_keys.p95",
            f"audit view key to frame, p95 of {len(latencies)} keys",
            "the goal (absolute figure)",
            [Sample(p95, p95)],
            [Sample(GOAL_S, GOAL_S)],
            ("<=", 1.0),
            extra={"p50_s": round(pct(latencies, 0.5), 4), "p95_s": round(p95, 4)},
        )
    ]
