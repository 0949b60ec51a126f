"""`shipdeck demo stop` and the notice on leaving the TUI: which processes the demo left running
(detached runners, target proxies and colours) and how they are ended, on the record."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from shipdeck.core.demo.files import MARKER
from shipdeck.core.errors import PermissionDenied, UsageError
from shipdeck.core.ports import MachineProcesses
from shipdeck.core.services.context import Context


@dataclass(frozen=True)
class DemoProcess:
    what: str  # "chat-api/prod proxy", "runner of plan P-3"
    pid: int


def demo_root(directory: str | Path | None) -> Path:
    """The demo workspace named (or found like any workspace); refused unless `demo` built it."""
    from shipdeck.core.workspace import find_workspace

    if directory is not None and not (Path(directory) / "shipdeck.toml").is_file():
        raise UsageError(f"{directory}: no shipdeck.toml there (not a demo workspace)")
    root = find_workspace(directory)
    if not (root / MARKER).is_file():
        raise UsageError(f"{root}: not a demo workspace (no {MARKER}); only `shipdeck demo` ones")
    return root


def running_processes(root: Path) -> list[DemoProcess]:
    """The target processes (proxies and colors) of the workspace's local targets running now."""
    from shipdeck.core.bootstrap import machine_targets
    from shipdeck.core.workspace import open_workspace

    return _processes(machine_targets(open_workspace(root)))


def still_running_notice(root: Path) -> str | None:
    """What to tell someone leaving the TUI: target processes outlive it, and how to end them."""
    running = running_processes(root)
    if not running:
        return None
    how = (
        f"stop them with: shipdeck demo stop {root}"
        if (root / MARKER).is_file()
        else "they keep serving until a plan or a person stops them"
    )
    return f"{len(running)} local target process(es) keep running; {how}"


def _processes(targets: list[tuple[str, str, MachineProcesses]]) -> list[DemoProcess]:
    return [
        DemoProcess(f"{app}/{env} {name}", pid)
        for app, env, target in targets
        for name, pid in sorted(target.processes().items())
    ]


def _live_runners(ctx: Context) -> list[DemoProcess]:
    """Detached runners still holding a lease, and waiters of queued plans, identified by pid
    and start time (a pid alone may have been reused by now)."""
    from shipdeck.core.storage import leases, queued_runs

    with ctx.db.read() as conn:
        named = [(f"runner of plan {r.plan_id}", r.runner)
                 for r in leases.with_runner(conn) if r.runner]  # fmt: skip
        named += [(f"waiter of queued plan {q.plan_id}", q.waiter)
                  for q in queued_runs.waiting(conn) if q.waiter]  # fmt: skip
    found = []
    for what, runner in named:
        pid = int(runner.split("|")[2]) if runner.count("|") == 3 else 0
        if pid > 0 and pid != os.getpid() and ctx.processes.runner_id(pid) == runner:
            found.append(DemoProcess(what, pid))
    return found


def _end(process: DemoProcess, grace: float = 5.0) -> None:
    """SIGTERM a runner (and SIGCONT, so a stopped one sees it), SIGKILL it if it is still
    there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(process.pid, sig)
            os.kill(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if _gone(process.pid):
                return
            time.sleep(0.02)


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (exited, waiting for its parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


def stop_demo(directory: str | Path | None, *, read_only: bool = False) -> list[DemoProcess]:
    """End the demo's runners, then its target processes; return what was running. Idempotent.

    Runners go first: a runner left alive would start target processes again. An intent event
    naming every process is committed before the first signal, and the outcome after.
    """
    from shipdeck.core.bootstrap import build_context, machine_targets
    from shipdeck.core.workspace import open_workspace

    ws = open_workspace(demo_root(directory))
    ctx = build_context(ws, read_only=read_only)
    try:
        if ctx.read_only:
            raise PermissionDenied("demo stop: this session is read-only")
        targets = machine_targets(ws)
        runners = _live_runners(ctx)
        planned = [*runners, *_processes(targets)]
        if not planned:
            return []
        listed = [{"what": p.what, "pid": p.pid} for p in planned]
        with ctx.db.write() as conn:
            ctx.audit(conn, "demo.stop", {"processes": listed})
        for runner in runners:
            _end(runner)
        for _, _, target in targets:
            target.teardown()
        with ctx.db.write() as conn:
            ctx.audit(conn, "demo.stopped", {"processes": listed})
        return planned
    finally:
        ctx.db.dispose()
