"""Running argv commands, shared by every adapter that runs a configured command.

Templates are filled by core.domain.argv_template (re-exported here for the adapters): nothing is
ever split or handed to a shell. Commands run in their own session, with capped output, and their
whole process group is killed on timeout.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipdeck.core.domain.argv_template import placeholders, render_argv
from shipdeck.core.errors import AdapterError, ExitCode, TimedOut

__all__ = [
    "CommandTimedOut", "CompletedRun", "kill_group", "placeholders", "render_argv", "run_argv",
    "run_bounded", "spawn",
]  # fmt: skip

# Output kept per stream; a chatty command must not grow memory without bound. The tail is kept
# because that is where the error usually is.
_OUTPUT_CAP = 4 * 1024 * 1024
# How long to keep reading after the command exited: a command that starts a daemon which
# inherits its stdout would otherwise hold us until the timeout.
_EXIT_GRACE = 0.5


class CommandTimedOut(AdapterError, TimedOut):
    """A configured command ran past its timeout; its process group was killed.

    It is an AdapterError so step runners treat it as a failed step (and roll back), and a
    TimedOut so front ends report it with the timed-out exit code.
    """

    exit_code = ExitCode.TIMED_OUT
    kind = "timed_out"


@dataclass(frozen=True)
class CompletedRun:
    returncode: int  # negative: ended by that signal (-9 when killed at its timeout)
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def spawn(
    argv: Sequence[str],
    label: str,
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start argv in its own session (so `kill_group` reaches its children), stdout piped.

    Start failures become one-line AdapterErrors starting with `label`.
    """
    if not argv:
        raise AdapterError(f"{label}: empty command")
    program = argv[0]
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        missing = program if exc.filename in (None, program) else exc.filename
        raise AdapterError(f"{label}: {missing!r} not found") from None
    except PermissionError:
        raise AdapterError(f"{label}: {program!r} is not executable") from None
    except (OSError, ValueError) as exc:
        # ValueError: an argument holds a NUL byte, which no OS can pass in argv.
        raise AdapterError(f"{label}: cannot start {program!r}: {exc}") from None


def run_argv(
    argv: Sequence[str],
    timeout: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    label: str = "command",
) -> CompletedRun:
    """Run argv (no shell), capture its output, and kill its whole process group on timeout,
    raising CommandTimedOut: for adapter steps, where a timeout is a failed step.

    `env` entries are added to the inherited environment. `label` starts every error message
    ("nginx target chat-api/prod: switch"). Output is decoded as UTF-8 with replacement and
    returned raw: callers strip control sequences before showing it.
    """
    done = run_bounded(argv, timeout, cwd, env, label=label)
    if done.timed_out:
        raise CommandTimedOut(f"{label}: {argv[0]} timed out after {timeout:g}s")
    return done


def run_bounded(
    argv: Sequence[str],
    timeout: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    label: str = "command",
) -> CompletedRun:
    """run_argv's work, with a timeout reported (`timed_out`, the output read until then)
    instead of raised: for callers that keep what a killed command printed."""
    start = time.monotonic()
    deadline = start + timeout
    proc = spawn(argv, label, cwd=cwd, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    exited_at: float | None = None
    timed_out = False
    try:
        with selectors.DefaultSelector() as sel:
            for fd in buffers:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    break  # the wait below times out at once and kills the group
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > _EXIT_GRACE:
                    break  # a daemon it started still holds the pipe; stop listening
                for key, _ in sel.select(timeout=min(deadline - now, 0.1)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buf = buffers[key.fd]
                    buf += chunk
                    if len(buf) > _OUTPUT_CAP:
                        del buf[: len(buf) - _OUTPUT_CAP]
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            timed_out = True
    except BaseException:
        if proc.poll() is None:
            kill_group(proc)
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return CompletedRun(
        returncode=proc.returncode,
        stdout=buffers[out_fd].decode("utf-8", "replace"),
        stderr=buffers[err_fd].decode("utf-8", "replace"),
        duration=time.monotonic() - start,
        timed_out=timed_out,
    )
