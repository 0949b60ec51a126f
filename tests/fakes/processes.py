"""A ProcessIdentity (core.ports) over a process table the test writes: pids are handed out by
`spawn`, this process is `me`, and a process is dead only once the test says so (`kill`), so a
test decides exactly when reconcile may take a runner's lease over."""

from __future__ import annotations

import threading

_PREFIX = "fake|"


class FakeProcesses:
    def __init__(self, me: int = 1000) -> None:
        self.me = me
        self.dead: set[int] = set()
        self._next = me + 1
        self._guard = threading.Lock()

    def spawn(self) -> int:
        """A new, live process's pid."""
        with self._guard:
            pid, self._next = self._next, self._next + 1
        return pid

    def kill(self, pid: int) -> None:
        self.dead.add(pid)

    def alive(self, pid: int) -> bool:
        return pid not in self.dead

    def runner_id(self, pid: int | None = None) -> str:
        return f"{_PREFIX}{self.me if pid is None else pid}"

    def runner_dead(self, runner: str | None) -> bool:
        """As the real one: only an id of this table names a process that can be known dead."""
        if not runner or not runner.startswith(_PREFIX):
            return False
        return not self.alive(int(runner.removeprefix(_PREFIX)))
