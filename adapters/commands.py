"""The command runner port (core.ports.CommandRunner) on this machine: adapters/argv.py's runner,
so checklist commands and eval gates get what adapter commands get: no shell, their own process
group killed whole at the timeout, and capped output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from shipdeck.adapters.argv import run_bounded
from shipdeck.core.ports import CommandResult


class ProcessRunner:
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        label: str = "command",
    ) -> CommandResult:
        done = run_bounded(argv, timeout, cwd, env, label=label)
        return CommandResult(
            returncode=None if done.timed_out else done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            timed_out=done.timed_out,
        )
