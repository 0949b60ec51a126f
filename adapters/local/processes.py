"""Long-lived child processes that outlive the shipdeck invocation that started them.

Each CLI call is a new process, and shipdeck itself may be SIGKILLed mid-run, so the supervisor
keeps no memory of its own: everything it knows is in a JSON file in `state_dir`, guarded by a
file lock. A process is identified by pid AND kernel start time (and boot id), because a pid alone
may have been recycled by the time another invocation reads the file, and signalling a stranger is
the one mistake a supervisor must never make.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from shipdeck.adapters.local.loopback import answers, port_free
from shipdeck.adapters.local.state_files import atomic_write_text
from shipdeck.core.domain.redact import last_line
from shipdeck.core.errors import AdapterError
from shipdeck.core.storage.files import make_dirs, open_file

STATE_FILE = "processes.json"
LOCK_FILE = "processes.lock"
SPAWN_ENV = "SHIPDECK_SPAWN_ID"
_POLL = 0.02
_CODE_ROOT = str(Path(__file__).resolve().parents[2])

# Children started by *this* process: holding their Popen lets us reap them (no zombie reported as
# alive) and keeps Popen.__del__ from warning that a service is "still running" - which it should.
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_guard = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Exclusive flock on `path`, shared by threads and processes alike (one open file each).

    Bounded so a wedged peer turns into an error naming `what` instead of a silent hang.
    """
    make_dirs(path.parent)
    fd = open_file(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AdapterError(
                        f"{what}: lock {path} still held by another process after {timeout:g}s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def python_env() -> dict[str, str]:
    """Environment for a child running one of our modules (`python -m shipdeck.adapters.local...`):
    importable whatever its working directory, and unbuffered so its log is current."""
    paths = (_CODE_ROOT, os.environ.get("PYTHONPATH"))
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "PYTHONUNBUFFERED": "1"}


def _last_line(log_path: Path) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    return last_line(text, limit=200)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of `pid`, None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: fields resume after the LAST ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


@dataclass(frozen=True)
class _Entry:
    pid: int  # 0: recorded before the spawn, not yet known (see _adopt)
    start_time: int
    boot_id: str
    argv: list[str]
    log_path: str
    spawn_id: str = ""  # also in the child's environment: how a lost child is found again


def _spawned(spawn_id: str) -> int | None:
    """The process whose environment carries this spawn id, if it runs."""
    marker = f"{SPAWN_ENV}={spawn_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except OSError:
            continue
    return None


class ProcessSupervisor:
    """Starts, finds and stops named service processes recorded under `state_dir`.

    `label` prefixes error messages so they name the adapter and target using this supervisor
    (e.g. "nginx target chat-api/prod").
    """

    def __init__(self, state_dir: Path, *, label: str = "process supervisor") -> None:
        self.state_dir = Path(state_dir)
        self.label = label
        self._state_path = self.state_dir / STATE_FILE
        self._lock_path = self.state_dir / LOCK_FILE

    # --- public API ------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Start `argv` as service `name` and return its pid.

        Idempotent: if `name` already runs with the same argv its pid is returned; if it runs with
        another argv it is stopped first. `env` is added to (not substituted for) our environment.
        The child gets its own session, so it survives us and a terminal hang-up, and its
        stdout/stderr are appended to `log_path`.
        """
        argv = [str(a) for a in argv]
        with self._locked():
            entries = self._load()
            current = entries.get(name)
            if current is not None and self._alive(current):
                if current.argv == argv:
                    return current.pid
                self._terminate(name, current, 5.0)
            # Recorded before it exists: were we killed between the spawn and the record below,
            # the next look finds the child by its spawn id instead of losing it on its port.
            spawn_id = uuid.uuid4().hex
            entries[name] = _Entry(0, 0, _boot_id(), argv, str(log_path), spawn_id)
            self._save(entries)
            entry = self._spawn(name, argv, Path(log_path), {**(env or {}), SPAWN_ENV: spawn_id})
            entries[name] = replace(entry, spawn_id=spawn_id)
            self._save(entries)
            return entry.pid

    def start_serving(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        port: int,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start a service that listens on 127.0.0.1:`port` and return once it answers there.

        The port must be free first: a foreign listener would answer the readiness probe for a
        process that failed to bind. A service that exits, or stays silent past `timeout`, is an
        AdapterError naming it (and, when it exited, its last log line).
        """
        if not port_free(port):
            self._fail(f"cannot start {name}: port {port} on 127.0.0.1 is already in use")
        self.start(name, argv, log_path, env=env)
        deadline = time.monotonic() + timeout
        while not answers(port):
            if not self.is_running(name):
                self._fail(f"{name} exited during start: {_last_line(log_path)}")
            if time.monotonic() >= deadline:
                self.stop(name)
                self._fail(f"{name} did not answer on port {port} within {timeout:g}s")
            time.sleep(0.05)

    def stop(self, name: str, timeout: float = 5.0) -> None:
        """SIGTERM the service's process group, SIGKILL it after `timeout`. Idempotent."""
        with self._locked():
            entries = self._load()
            entry = entries.pop(name, None)
            if entry is None:
                return
            if self._alive(entry):
                self._terminate(name, entry, timeout)
            self._save(entries)

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def pid(self, name: str) -> int | None:
        """The service's pid if that very process (same start time) is still alive."""
        entry = self._load().get(name)
        return entry.pid if entry is not None and self._alive(entry) else None

    def names(self) -> list[str]:
        """Names of the services that are running now."""
        return sorted(name for name, e in self._load().items() if self._alive(e))

    # --- internals -------------------------------------------------------------------------

    def _fail(self, cause: str) -> NoReturn:
        raise AdapterError(f"{self.label}: {cause}")

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self._lock_path, 60.0, self.label)

    def _load(self) -> dict[str, _Entry]:
        try:
            raw: dict[str, Any] = json.loads(self._state_path.read_text(encoding="utf-8"))
            entries = {name: _Entry(**fields) for name, fields in raw["processes"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AdapterError(
                f"{self.label}: unreadable process state {self._state_path}: {exc}"
            ) from None
        return {name: self._adopt(e) if e.pid == 0 else e for name, e in entries.items()}

    def _adopt(self, entry: _Entry) -> _Entry:
        """A spawn recorded but never confirmed: the child, if it started, found by its id."""
        pid = _spawned(entry.spawn_id) if entry.spawn_id else None
        stat = _proc_stat(pid) if pid is not None else None
        if pid is None or stat is None:
            return entry  # never started (pid 0 is never alive)
        return replace(entry, pid=pid, start_time=stat[1])

    def _save(self, entries: dict[str, _Entry]) -> None:
        doc = {"version": 1, "processes": {n: asdict(e) for n, e in sorted(entries.items())}}
        make_dirs(self.state_dir)
        atomic_write_text(self._state_path, json.dumps(doc, indent=2) + "\n")

    def _spawn(
        self, name: str, argv: list[str], log_path: Path, env: Mapping[str, str] | None
    ) -> _Entry:
        make_dirs(log_path.parent)
        child_env = {**os.environ, **env} if env else None
        try:
            # Appended without following a link: a symlink planted at the log (or a folder
            # above it, below the state folder) would make the app write wherever we may write.
            fd = open_file(log_path, os.O_WRONLY | os.O_APPEND, root=self.state_dir)
            with open(fd, "ab") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env,
                    start_new_session=True,
                    close_fds=True,
                    shell=False,
                )
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{self.label}: cannot start {name}: {exc}") from None
        with _children_guard:
            _children[proc.pid] = proc
        stat = _proc_stat(proc.pid)  # start time is set at fork and survives exec
        if stat is None:
            raise AdapterError(f"{self.label}: {name} vanished right after start")
        return _Entry(proc.pid, stat[1], _boot_id(), argv, str(log_path))

    def _alive(self, entry: _Entry) -> bool:
        with _children_guard:
            child = _children.get(entry.pid)
        if child is not None and child.poll() is not None:
            with _children_guard:
                _children.pop(entry.pid, None)
            return False
        stat = _proc_stat(entry.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return stat[1] == entry.start_time and entry.boot_id == _boot_id()

    def _terminate(self, name: str, entry: _Entry, timeout: float) -> None:
        # start_new_session made the service a group leader: signal the group so helpers it
        # spawned go with it.
        for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                try:
                    os.killpg(entry.pid, sig)
                except ProcessLookupError:  # it left its group: signal the process alone
                    os.kill(entry.pid, sig)
            except ProcessLookupError:
                return
            except PermissionError:
                raise AdapterError(
                    f"{self.label}: not permitted to signal {name} (pid {entry.pid})"
                ) from None
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if not self._alive(entry):
                    return
                time.sleep(_POLL)
        raise AdapterError(f"{self.label}: {name} (pid {entry.pid}) still alive 5s after SIGKILL")
