"""The front ends: the headless CLI (tui.cli) and the Textual app (tui.app).

Importing this package starts a shipdeck process (`shipdeck ...`, `shipdeck tui`, or
tui.app.start_app), so the garbage collector is tuned here, before the first import that
matters: a young collection every 50,000 allocations instead of 700, and a middle one every 100
young ones instead of 10. What these processes allocate at start is modules, classes and the
workspace, none of it garbage: the default thresholds walked it 250 times while the TUI started
(50 apps: ~35 ms of CPU, four times what a bare Textual app spends there; a warm `status` at 1000
apps: a tenth of its time), and a middle collection among the imports walked everything loaded
so far once more (~10 ms). Cycles are still collected, later. What is loaded once a command or
the TUI is open is then frozen (tui.cli.main, tui.app.start_app).
"""

import gc

gc.set_threshold(50_000, 100, gc.get_threshold()[2])
