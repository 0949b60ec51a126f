"""Key press to updated frame on the audit view, and scrolling to the end, on a big log.

    cd /work/main && python -m bench.tui_audit_keys [--apps 200] [--events 1000000]

Uses the big workspace bench.tui_start uses (bench/_common.py's, cached under bench/out/). Drives the real app with
Pilot at 120x40: each sample is the time from a key event entering the driver until a frame is
composed in which every visible row holds its event (timestamped where Textual hands the frame
to the terminal; headless, nothing is written after that). Prints p50/p95 per key
kind and overall (goal: p95 under 100 ms), then `G` (end of the log) unfiltered and filtered by
kind (goal: under 200 ms), and how long a filter takes to show its first rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from bench.tui_start import workspace


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(workspace: str) -> None:
    from textual import events

    from shipdeck.core.bootstrap import open_context
    from shipdeck.tui.app import ShipdeckApp
    from shipdeck.tui.widgets.audit_view import AuditView

    os.environ["SHIPDECK_ACTOR"] = "alice"
    ctx = open_context(workspace)
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
        print(
            f"audit view: {view.shape.total:,} events, {view.page_rows} rows visible, "
            f"opened with its first rows in {opened * 1000:.1f} ms"
        )
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
        for name, values in [*samples.items(), ("all keys", everything)]:
            p95 = pct(values, 0.95)
            print(
                f"{name:<10} n={len(values):<4} p50 {pct(values, 0.5) * 1000:6.1f} ms  "
                f"p95 {p95 * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms  (p95 / 100 ms goal = {p95 / 0.1:.2f})"
            )
        rows_read = len(view.rows)
        end = await timed("G", moved=lambda _: view.cursor == view.shape.total - 1)
        assert view.current is not None
        print(
            f"G to the end (event {view.current.seq}): {end * 1000:.1f} ms (goal < 200 ms, ratio {end / 0.2:.2f}); "
            f"rows held before: {rows_read:,}"
        )
        home = await timed("g", moved=lambda _: view.cursor == 0)
        print(f"g back to the newest: {home * 1000:.1f} ms")

        t0 = time.perf_counter()
        await pilot.press("slash", *"kind:run.started")
        frames.clear()
        t0 = time.perf_counter()
        await pilot.press("enter")
        await until(lambda: view.shape.filtered and bool(frames) and frames[-1] > t0)
        first = frames[-1] - t0
        print(
            f"filter kind:run.started -> first rows: {first * 1000:.1f} ms ({view.shape.total:,} matches)"
        )
        end = await timed("G", moved=lambda _: view.cursor == view.shape.total - 1)
        print(f"G to the end, filtered: {end * 1000:.1f} ms (goal < 200 ms, ratio {end / 0.2:.2f})")
        mid = statistics.median([await timed("pageup") for _ in range(20)])
        print(f"pageup from the oldest end, filtered: median {mid * 1000:.1f} ms")
    ctx.db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_audit_keys")
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(bench(str(workspace(args.apps, args.events))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
