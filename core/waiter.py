"""The queue's waiting process: `python -m shipdeck.core.waiter --workspace W PLAN`.

`plan run --when-open` records the queue entry and starts this in its own session, so closing the
SSH connection does not end it. It acts as whoever runs it (resolved as any command is) and only
for a plan that person queued; it looks again every few seconds, starts the plan at the opening
through the same start_run as `plan run` (policy decided afresh), and runs it in this process, or
ends the queue naming what was voided. Lives outside core.services because it wires adapters.
"""

from __future__ import annotations

import argparse
import os
import sys

from shipdeck.core.errors import ShipdeckError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipdeck.core.waiter")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("plan")
    args = parser.parse_args(argv)

    from shipdeck.core.bootstrap import open_context
    from shipdeck.core.services.runs.queue import wait_for_window

    try:
        ctx = open_context(args.workspace)
        print(f"waiter pid {os.getpid()}: plan {args.plan} queued by {ctx.actor.name}", flush=True)
        result = wait_for_window(ctx, args.plan)
    except ShipdeckError as exc:
        print(f"waiter: {exc.kind}: {exc.message}", flush=True)
        return int(exc.exit_code)
    if result is None:
        print(f"waiter: plan {args.plan} is no longer queued; nothing started", flush=True)
        return 0
    print(f"waiter: plan {result.plan_id} {result.state}: {result.result}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
