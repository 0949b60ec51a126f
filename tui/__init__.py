"""The front ends: the headless CLI (tui.cli) and the Textual app (tui.app).

Importing this package starts a shipdeck process (`shipdeck ...`, `shipdeck tui`, or
tui.app.start_app), so the garbage collector is tuned here, before the first import that
matters. What such a process allocates until it is open (its imports, the CLI's commands, the
workspace: ~110,000 objects for the TUI, at 50 apps as at 1000) is none of it garbage, so no
young collection runs before that (one collection of 50,000 such objects was ~15 ms of the TUI
start); `opened()` then freezes it all and collects every 50,000 allocations. The middle
generation is collected every 100 young collections instead of 10: with the default thresholds
the TUI's start walked its imports 250 times (50 apps: ~35 ms, four times what a bare Textual
app spends there). Cycles are still collected, later.
"""

import gc

START_THRESHOLD = 200_000  # young objects before a collection, until the process is open
RUN_THRESHOLD = 50_000

gc.set_threshold(START_THRESHOLD, 100, gc.get_threshold()[2])


def opened() -> None:
    """What is loaded by now (imports, the workspace) lives until exit: frozen, so no collection
    walks it again, nor the interpreter's exit (50 apps: ~80 ms of a ~0.7 s TUI start, most of it
    the exit); from now on a young collection every RUN_THRESHOLD allocations."""
    gc.freeze()
    gc.set_threshold(RUN_THRESHOLD, *gc.get_threshold()[1:])
