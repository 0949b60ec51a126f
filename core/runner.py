"""The detached run process: `python -m shipdeck.core.runner --workspace W --actor NAME PLAN EPOCH`.

`plan run` without `--wait` starts the run (policy and lease) itself, then hands the execution to
this process so the command can return. It continues the run under the same person's name; the
engine refuses unless that person holds the lease at exactly EPOCH, and before that the runner
redeems the one-time token the launching command handed it through an inherited pipe
(core.services.runner_token): a second runner started by hand for the same plan and epoch is
refused and audited. Lives outside core.services because it wires
adapters (through core.bootstrap).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from shipdeck.core.errors import ShipdeckError, StorageFailed, StorageUnwritable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipdeck.core.runner")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("plan")
    parser.add_argument("epoch", type=int)
    args = parser.parse_args(argv)

    from shipdeck.core.bootstrap import open_context
    from shipdeck.core.services import runner_token
    from shipdeck.core.services.runs import RunTicket, execute_run

    token = runner_token.receive()  # first: nothing below may see or print it
    try:
        ctx = open_context(args.workspace)
        acting = ctx.actor  # resolved as any command is (kernel, delegation or session_user)
        ctx = replace(
            ctx,
            actor=replace(
                acting,
                name=args.actor,
                roles=tuple(ctx.config.roles_of(args.actor)),
                permissions=ctx.config.permissions_of(args.actor),
            ),
        )
        runner_token.redeem(ctx, args.plan, args.epoch, token)
        print(f"runner pid {os.getpid()}: plan {args.plan} epoch {args.epoch}", flush=True)
        result = execute_run(
            ctx,
            RunTicket(args.plan, args.epoch),
            lambda s: print(
                f"{s.at:%H:%M:%S} wave {s.wave} {s.app} {s.step} {s.state} {s.detail}", flush=True
            ),
        )
    except ShipdeckError as exc:
        after = ""
        if isinstance(
            exc, StorageFailed | StorageUnwritable
        ):  # "nothing was changed" is the write's
            after = (
                " (by that write; the run stopped there, every effect before it is under its"
                " recorded intent: run 'shipdeck reconcile' once the database takes writes)"
            )
        print(f"runner: {exc.kind}: {exc.message}{after}", flush=True)
        return int(exc.exit_code)
    print(f"runner: plan {result.plan_id} {result.state}: {result.result}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
