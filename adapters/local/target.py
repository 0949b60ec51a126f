"""The `local` blue/green target: two app processes on loopback behind a file-driven TCP proxy.

Everything this target knows lives in `state_dir` (one folder per app/env), never in memory, so
separate CLI invocations and a shipdeck restarted after a SIGKILL see the same world:

    processes.json, processes.lock   the supervisor's record of blue, green and proxy processes
    backend.json                     the proxy's live backend: THE switch, read by live_color;
                                     and a canary's backend and weight while one runs
    draining.json                    the proxy's open connections to backends no longer live
    metrics.json                     the proxy's counters per backend (a canary's analysis)
    staged-{blue,green}.json         what release each color runs, with its exact argv
    epoch                            the highest fencing epoch seen
    target.lock                      held around every check-and-act
    logs/{blue,green,proxy}.log      the processes' output, for log pulls

Settings: port (front, required), blue_port / green_port (default port+1 / port+2), command (argv
template), health_path (default /health), health_timeout (seconds, default 5). The app must answer
GET /version with its version: a switch is confirmed by reading it back through the front port.

Canary: `weights()` is the target itself. `set_weight` adds {"canary": {backend, color, version,
weight}} to backend.json under the same epoch fence and lock as a switch (weight 0 removes it), and
a switch writes backend.json afresh, which ends any split. `metrics` reads the proxy's counters.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from shipdeck.adapters.argv import render_argv
from shipdeck.adapters.canary_split import split_problem, weight_problem
from shipdeck.adapters.fencing import EpochFence
from shipdeck.adapters.local.backend import BACKEND_FILE, COLORS, live_color_in
from shipdeck.adapters.local.loopback import http_get
from shipdeck.adapters.local.processes import ProcessSupervisor, python_env
from shipdeck.adapters.local.proxy_metrics import METRICS_FILE, read_metrics
from shipdeck.adapters.local.state_files import atomic_write_text, read_state
from shipdeck.core.domain.redact import one_line
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, Health, ReleaseSpec, TrafficWeights

PROXY = "proxy"
START_TIMEOUT = 10.0
# How long a stop waits for the proxy's connections to the old color to finish (a log stream may
# hold one open): past it the color is stopped anyway, as a stop always did.
DRAIN_TIMEOUT = 10.0
_DRAIN_POLL = 0.02


def render_command(
    template: Sequence[str], values: Mapping[str, str], config: Mapping[str, Any]
) -> list[str]:
    """The app's argv items from the `command` template: {port} {version} {color} {app} {commit}
    and {config[KEY]} exist, nothing else. A config key the release does not set renders as ""
    (the demo app reads an empty --health as "ok"). Raises ValueError for anything else."""
    return render_argv(template, {**values, "config": config}, missing_config="")


class LocalTarget:
    """One app in one environment on this machine; see the module docstring for the layout."""

    def __init__(self, app: str, env: str, settings: Mapping[str, Any], state_dir: Path) -> None:
        self.app = app
        self.env = env
        self.state_dir = Path(state_dir)
        self._where = f"local target {app}/{env}"
        self.port = self._port_setting(settings, "port", None)
        self.ports: dict[Color, int] = {
            "blue": self._port_setting(settings, "blue_port", self.port + 1),
            "green": self._port_setting(settings, "green_port", self.port + 2),
        }
        if len({self.port, *self.ports.values()}) != 3:
            self._fail(f"port, blue_port and green_port must differ, got {self.port}, {self.ports}")
        command = settings.get("command")
        if command is None:
            # Imported here: the demo app's module (http.server, argparse) cost every TUI start
            # ~15 ms through status's live_color_in (local/backend.py), for targets that run no command.
            from shipdeck.adapters.local.demo_app import COMMAND

            self.command: list[str] = list(COMMAND)
        elif (
            isinstance(command, list | tuple)
            and command
            and all(isinstance(a, str) for a in command)
        ):
            self.command = list(command)
        else:
            self._fail("setting 'command' must be a non-empty list of strings (an argv, no shell)")
        self.health_path = str(settings.get("health_path", "/health"))
        if not self.health_path.startswith("/"):
            self._fail(f"setting 'health_path' must start with '/', got {self.health_path!r}")
        try:
            self.health_timeout = float(settings.get("health_timeout", 5))
        except (TypeError, ValueError):
            self._fail("setting 'health_timeout' must be a number of seconds")
        self.supervisor = ProcessSupervisor(self.state_dir, label=self._where)
        self._backend_path = self.state_dir / BACKEND_FILE
        self.fence = EpochFence(self.state_dir, self._where)
        self._child_env = python_env()

    # --- Target port -----------------------------------------------------------------------

    def live_color(self) -> Color | None:
        return live_color_in(self.state_dir, self._where)

    def staged_version(self, color: Color) -> str | None:
        """The version `color` runs, None if nothing runs there."""
        if not self.supervisor.is_running(color):
            return None
        version = self._read_json(self._staged_path(color)).get("version")
        return str(version) if version is not None else None

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def color_endpoint(self, color: Color) -> str:
        return f"http://127.0.0.1:{self.ports[self._color(color)]}"

    def log_path(self, color: Color | str) -> Path:
        return self.state_dir / "logs" / f"{color}.log"

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        color = self._color(color)
        with self.fence.hold(epoch):
            if self.live_color() == color:
                self._fail(f"refusing to stage {release.version!r} on {color}: {color} is live")
            values = {
                "port": str(self.ports[color]),
                "version": release.version,
                "color": color,
                "app": release.app,
                "commit": release.commit,
            }
            try:
                argv = [self.command[0], *render_command(self.command[1:], values, release.config)]
            except ValueError as exc:
                self._fail(f"setting 'command': {exc}")
            staged = self._read_json(self._staged_path(color))
            if not (staged.get("argv") == argv and self.supervisor.is_running(color)):
                with contextlib.suppress(FileNotFoundError):
                    self._staged_path(color).unlink()  # never describe a process we stopped
                self.supervisor.stop(color)
                self._start(color, argv)
                atomic_write_text(
                    self._staged_path(color),
                    json.dumps(
                        {
                            "version": release.version,
                            "commit": release.commit,
                            "digest": release.digest,
                            "argv": argv,
                            "staged_at": datetime.now(UTC).isoformat(),
                        },
                        indent=2,
                    ),
                )
            self._ensure_proxy()

    def health(self, color: Color) -> Health:
        color = self._color(color)
        if not self.supervisor.is_running(color):
            return Health(False, f"{color} is not running")
        port = self.ports[color]
        base = f"http://127.0.0.1:{port}"
        try:
            status, body = http_get(f"{base}{self.health_path}", self.health_timeout)
            v_status, v_body = http_get(f"{base}/version", self.health_timeout)
        except (OSError, http.client.HTTPException) as exc:
            return Health(False, f"{color} on port {port}: {exc or type(exc).__name__}")
        version = v_body if v_status == 200 else None
        detail = f"GET {self.health_path} -> {status} {one_line(body, 120)}"
        ok = status == 200
        staged = self._read_json(self._staged_path(color)).get("version")
        if version is not None and staged is not None and version != staged:
            ok = False
            detail += (
                f"; serves version {one_line(version, 120)!r}, staged {one_line(staged, 120)!r}"
            )
        return Health(ok, detail, version)

    def switch(self, color: Color, epoch: int) -> None:
        color = self._color(color)
        with self.fence.hold(epoch):
            staged = self._read_json(self._staged_path(color)).get("version")
            if staged is None:
                self._fail(f"cannot switch to {color}: nothing is staged there")
            if not self.supervisor.is_running(color):
                self._fail(f"cannot switch to {color}: its process is not running")
            self._ensure_proxy()
            previous = self._backend_path.read_text() if self._backend_path.exists() else None
            doc = {
                "backend": f"127.0.0.1:{self.ports[color]}",
                "color": color,
                "version": staged,
                "epoch": epoch,
                "switched_at": datetime.now(UTC).isoformat(),
            }
            atomic_write_text(self._backend_path, json.dumps(doc, indent=2))
            try:
                status, body = http_get(f"{self.endpoint()}/version", self.health_timeout)
                problem = (
                    None if (status, body) == (200, staged) else f"{status} {one_line(body, 120)!r}"
                )
            except (OSError, http.client.HTTPException) as exc:
                problem = str(exc) or type(exc).__name__
            if problem is not None:
                if previous is None:
                    self._backend_path.unlink()
                else:
                    atomic_write_text(self._backend_path, previous)
                self._fail(
                    f"switch to {color} not confirmed (GET /version on the front port: {problem}); "
                    "switched back"
                )

    def stop_idle(self, color: Color, epoch: int) -> None:
        color = self._color(color)
        with self.fence.hold(epoch):
            if self.live_color() == color:
                self._fail(f"refusing to stop {color}: it is live")
            self._drained(color)
            self.supervisor.stop(color)
            with contextlib.suppress(FileNotFoundError):
                self._staged_path(color).unlink()

    def _drained(self, color: Color) -> None:
        """Wait until the proxy has seen the current route and has no connection open to `color`
        (see front_proxy: a connection routed there just before the switch, or before a canary
        went back to 0, may still be on its way), at most DRAIN_TIMEOUT."""
        from shipdeck.adapters.local.front_proxy import DRAINING_FILE, route_key  # asyncio

        backend = f"127.0.0.1:{self.ports[color]}"
        path = self._backend_path.with_name(DRAINING_FILE)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            doc = self._read_json(path)
            seen = doc.get("route") == route_key(self._backend_path)
            if seen and backend not in doc.get("draining", {}):
                return
            if time.monotonic() >= deadline or not self.supervisor.is_running(PROXY):
                return
            time.sleep(_DRAIN_POLL)

    def restart(self, epoch: int) -> None:
        with self.fence.hold(epoch):
            color = self.live_color()
            if color is None:
                self._fail("cannot restart: nothing is live")
            argv = self._read_json(self._staged_path(color)).get("argv")
            if not isinstance(argv, list):
                self._fail(f"cannot restart {color}: no staged release recorded")
            self.supervisor.stop(color)
            self._start(color, argv)
            deadline = time.monotonic() + START_TIMEOUT
            while not (health := self.health(color)).ok:
                if time.monotonic() >= deadline:
                    self._fail(f"{color} restarted but not healthy: {health.detail}")
                time.sleep(0.1)

    def weights(self) -> TrafficWeights:
        """The front proxy splits new connections by weight (see set_weight)."""
        return self

    # --- TrafficWeights port ---------------------------------------------------------------

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        color = self._color(canary_color)
        if why := weight_problem(percent):
            self._fail(why)
        with self.fence.hold(epoch):
            doc = self._read_json(self._backend_path)
            if why := split_problem(percent, color, doc.get("color")):
                self._fail(why)
            if percent == 0:
                if "canary" not in doc:
                    return
                del doc["canary"]
            else:
                staged = self._read_json(self._staged_path(color)).get("version")
                if staged is None or not self.supervisor.is_running(color):
                    self._fail(f"cannot send {percent}% to {color}: nothing runs there")
                self._ensure_proxy()
                doc["canary"] = {
                    "backend": f"127.0.0.1:{self.ports[color]}",
                    "color": color,
                    "version": staged,
                    "weight": percent,
                    "epoch": epoch,
                    "set_at": datetime.now(UTC).isoformat(),
                }
            atomic_write_text(self._backend_path, json.dumps(doc, indent=2))

    def weight(self) -> int:
        canary = self._read_json(self._backend_path).get("canary") or {}
        weight = canary.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int):
            self._fail(f"unreadable canary weight {weight!r} in {self._backend_path}")
        return weight

    def metrics_problem(self) -> None:
        """The proxy always counts: nothing to configure."""

    def metrics(self, color: Color, window: float) -> dict[str, float]:
        """`color`'s traffic through the front proxy over the last `window` seconds (see
        proxy_metrics.window_values); nothing counted (no proxy yet) reads as no requests."""
        backend = f"127.0.0.1:{self.ports[self._color(color)]}"
        path = self.state_dir / METRICS_FILE
        return read_metrics(path, backend, window, time.time(), self._where)

    def close(self) -> None:
        """Nothing to release: no connection outlives a call."""

    def processes(self) -> dict[str, int]:
        """Name -> pid of the proxy and colors running now (what `teardown` stops)."""
        pids = {name: self.supervisor.pid(name) for name in self.supervisor.names()}
        return {name: pid for name, pid in pids.items() if pid is not None}

    def teardown(self) -> None:
        """Stop the proxy and both colors and forget the switch: nothing is live afterwards."""
        with self.fence.locked():
            for name in (PROXY, *COLORS):
                self.supervisor.stop(name)
            for path in (self._backend_path, *map(self._staged_path, COLORS)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # --- internals -------------------------------------------------------------------------

    def _fail(self, cause: str) -> NoReturn:
        raise AdapterError(f"{self._where}: {cause}")

    def _port_setting(self, settings: Mapping[str, Any], key: str, default: int | None) -> int:
        value = settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            self._fail(f"setting {key!r} must be a TCP port number, got {value!r}")
        return int(value)

    def _color(self, color: str) -> Color:
        if color not in COLORS:
            self._fail(f"unknown color {color!r}")
        return color

    def _staged_path(self, color: str) -> Path:
        return self.state_dir / f"staged-{color}.json"

    def _read_json(self, path: Path) -> dict[str, Any]:
        return read_state(path, self._where)

    def _start(self, color: Color, argv: list[str]) -> None:
        self.supervisor.start_serving(
            color, argv, self.log_path(color), self.ports[color], START_TIMEOUT, self._child_env
        )

    def _ensure_proxy(self) -> None:
        argv = [
            sys.executable, "-m", "shipdeck.adapters.local.front_proxy",
            "--listen", str(self.port), "--state", str(self._backend_path),
        ]  # fmt: skip
        if not self.supervisor.is_running(PROXY):
            self.supervisor.start_serving(
                PROXY, argv, self.log_path(PROXY), self.port, START_TIMEOUT, self._child_env
            )
