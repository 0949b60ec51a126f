"""A CommandRunner port (core.ports) that runs nothing: it records each call and answers with
what the test scripted, so a unit test of a service that runs commands says exactly what the
command "printed" and checks what it was asked to run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipdeck.core.ports import CommandResult


@dataclass(frozen=True)
class CommandCall:
    argv: tuple[str, ...]
    timeout: float
    cwd: Path | None
    env: Mapping[str, str]


@dataclass
class FakeCommands:
    """`answer` decides each result from the call (default: exit 0, no output)."""

    answer: Callable[[CommandCall], CommandResult] = lambda call: CommandResult(0, "", "")
    calls: list[CommandCall] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        label: str = "command",
    ) -> CommandResult:
        call = CommandCall(tuple(argv), timeout, cwd, dict(env or {}))
        self.calls.append(call)
        return self.answer(call)
