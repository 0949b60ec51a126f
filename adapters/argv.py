"""argv templates and running them, shared by every adapter that runs a configured command.

Commands come from shipdeck.toml as argv lists and their placeholders are filled INSIDE each item:
nothing is ever split or handed to a shell, so a version, commit or config value can hold spaces,
`;|&$()`, newlines or a leading "-" and still arrive as exactly one argument, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipdeck.core.errors import AdapterError, ExitCode, TimedOut

# `{{` and `}}` are literal braces; `{name}` or `{name[KEY]}` a placeholder; anything else
# between braces (or a lone brace) is a mistake worth reporting rather than passing through.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<key>[^\[\]]+)\])?")

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
    returncode: int
    stdout: str
    stderr: str
    duration: float


def _parse(item: str) -> list[str | tuple[str, str | None]]:
    """Split one argv item into literal text and (name, key) placeholders."""
    parts: list[str | tuple[str, str | None]] = []
    pos = 0
    for match in _TOKEN.finditer(item):
        if match.start() > pos:
            parts.append(item[pos : match.start()])
        token = match.group(0)
        pos = match.end()
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        inner = match.group(1)
        if inner is None:
            raise ValueError(f"lone {token!r} in argv item {item!r}; write {token * 2} for a brace")
        found = _PLACEHOLDER.fullmatch(inner)
        if found is None:
            raise ValueError(f"malformed placeholder {token} in argv item {item!r}")
        parts.append((found["name"], found["key"]))
    if pos < len(item):
        parts.append(item[pos:])
    return parts


def _label(name: str, key: str | None) -> str:
    return "{" + name + (f"[{key}]" if key is not None else "") + "}"


def placeholders(template: Sequence[str]) -> set[str]:
    """Placeholders a template uses, as written (`app`, `config[region]`), to validate config
    before anything runs; raises ValueError for malformed ones."""
    found: set[str] = set()
    for item in template:
        for part in _parse(item):
            if isinstance(part, tuple):
                found.add(_label(*part)[1:-1])
    return found


def _text(value: object, label: str) -> str:
    if value is None:
        raise ValueError(f"placeholder {label} has no value here")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Path):
        return os.fspath(value)
    return json.dumps(value, sort_keys=True, default=str)


def render_argv(
    template: Sequence[str],
    values: Mapping[str, object],
    *,
    missing_config: str | None = None,
) -> list[str]:
    """Fill `{name}` and `{config[KEY]}` placeholders inside each item; one item in, one out.

    Raises ValueError naming the placeholder when a value is unknown or missing, except that with
    `missing_config` set a `{config[KEY]}` whose KEY is absent (or None) renders as that text: a
    template with defaults of its own (the demo app's `--health=`) can then use keys a release
    need not set.
    """
    if isinstance(template, str):
        raise ValueError("an argv template must be a list of strings, not one string")
    argv: list[str] = []
    for item in template:
        if not isinstance(item, str):
            raise ValueError(f"argv item {item!r} is not a string")
        out: list[str] = []
        for part in _parse(item):
            if isinstance(part, str):
                out.append(part)
                continue
            name, key = part
            label = _label(name, key)
            if name not in values:
                raise ValueError(f"unknown placeholder {label}")
            value = values[name]
            if key is not None:
                if not isinstance(value, Mapping):
                    raise ValueError(f"unknown placeholder {label}")
                if name == "config" and missing_config is not None and value.get(key) is None:
                    out.append(missing_config)
                    continue
                if key not in value:
                    raise ValueError(f"unknown placeholder {label}")
                value = value[key]
            out.append(_text(value, label))
        argv.append("".join(out))
    return argv


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
    """Run argv (no shell), capture its output, and kill its whole process group on timeout.

    `env` entries are added to the inherited environment. `label` starts every error message
    ("nginx target chat-api/prod: switch"). Output is decoded as UTF-8 with replacement and
    returned raw: callers strip control sequences before showing it.
    """
    start = time.monotonic()
    deadline = start + timeout
    proc = spawn(argv, label, cwd=cwd, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    exited_at: float | None = None
    try:
        with selectors.DefaultSelector() as sel:
            for fd in buffers:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    kill_group(proc)
                    raise CommandTimedOut(f"{label}: {argv[0]} timed out after {timeout:g}s")
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
            returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise CommandTimedOut(f"{label}: {argv[0]} timed out after {timeout:g}s") from None
    except BaseException:
        if proc.poll() is None:
            kill_group(proc)
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return CompletedRun(
        returncode=returncode,
        stdout=buffers[out_fd].decode("utf-8", "replace"),
        stderr=buffers[err_fd].decode("utf-8", "replace"),
        duration=time.monotonic() - start,
    )
