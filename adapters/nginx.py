"""nginx as the traffic switch in front of two backend processes (blue and green) on loopback.

nginx includes a file holding the one upstream it proxies to (nginx_include: the live server
first; during a canary the canary second, each with its share as `weight`):

    upstream NAME {
        server 127.0.0.1:PORT;
    }

A switch rewrites that file atomically, asks `nginx -t` whether the whole configuration still
holds, and reloads gracefully: old workers finish their requests while new ones already use the
new upstream, so no request fails. If the test or the reload fails the previous file is put back.
The include file is also what live_color and weight() read: it is what nginx serves from.

Canary: `weights()` is the target itself. `set_weight` writes the weighted upstream the same way
(same fence, lock, test, reload and restore); weight 0, and any switch, write the single live
server again, which ends the split. A stop waits for nginx's old workers to finish (pid_file), so
a canary put back to 0 loses no request in flight. A canary's analysis counts each color's
requests in nginx's access log (nginx_access_log: the format shipdeck documents).

Settings:
    include_file   path of the file nginx includes (written by shipdeck)        required
    upstream       the upstream name the nginx config proxies to               required
    blue_port, green_port   loopback ports the two colors listen on            required
    nginx_conf     main config, for `nginx -c CONF -t` and `-s reload`         required unless
    test, reload   argv lists replacing those two commands                      both are given
    nginx          nginx binary (default "nginx"); nginx_args: extra argv items for both, e.g.
                   ["-p", "/srv/nginx", "-e", "stderr"]
    command        argv template starting a color (default: the demo app); placeholders
                   {app} {env} {color} {port} {version} {commit} {digest} {config[KEY]}
    url            front URL users reach; when set, a switch is confirmed by reading
                   `version_path` (default /version, "" to skip) through it
    pid_file       nginx's master pid file (default: an absolute `pid` in nginx_conf); with it
                   a switch or weight change returns only once old workers have stopped taking
                   connections, and a stop waits (drain_timeout) until they have exited
    access_log     nginx's access log in shipdeck's format: required by a canary's analysis
    health_path    default /health; timeout (nginx commands), health_timeout, start_timeout,
                   switch_timeout, drain_timeout in seconds

State in `state_dir`: epoch and target.lock (the fence), processes.json (the supervisor),
staged-{color}.json (release and exact argv), logs/{color}.log (the backends' output).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from shipdeck.adapters import nginx_process
from shipdeck.adapters.argv import placeholders, render_argv, run_argv
from shipdeck.adapters.canary_split import split_problem, weight_problem
from shipdeck.adapters.fencing import EpochFence
from shipdeck.adapters.local import demo_app
from shipdeck.adapters.local.loopback import answers, http_get
from shipdeck.adapters.local.processes import ProcessSupervisor, python_env
from shipdeck.adapters.local.proxy_metrics import analysis_values
from shipdeck.adapters.local.state_files import atomic_write_text, read_state
from shipdeck.adapters.logs import FileLogSource
from shipdeck.adapters.nginx_access_log import window_stats
from shipdeck.adapters.nginx_include import Server, canary_percent, read_servers, render_include
from shipdeck.core.domain.redact import one_line
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import Color, Health, ReleaseSpec, TrafficWeights

COLORS: tuple[Color, Color] = ("blue", "green")
COMMAND_PLACEHOLDERS = frozenset({"app", "env", "color", "port", "version", "commit", "digest"})
# Upstream names go into nginx's config text: only what nginx itself calls a name.
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class NginxTarget:
    """One app in one environment behind nginx on this machine; see the module docstring."""

    def __init__(
        self, app: str, env: str, settings: Mapping[str, Any], state_dir: Path | str
    ) -> None:
        self.app = app
        self.env = env
        self.label = f"nginx target {app}/{env}"
        self.state_dir = Path(state_dir)
        include = settings.get("include_file")
        if not isinstance(include, str) or not include:
            self._config("settings.include_file is required (the file nginx includes)")
        self.include_file = Path(include)
        upstream = settings.get("upstream")
        if not isinstance(upstream, str) or not _UPSTREAM_NAME.fullmatch(upstream):
            self._config("settings.upstream must be an nginx upstream name (letters, digits, _.-)")
        self.upstream = upstream
        self.ports: dict[Color, int] = {c: self._port(settings, f"{c}_port") for c in COLORS}
        if self.ports["blue"] == self.ports["green"]:
            self._config("blue_port and green_port must differ")
        self.command, self._demo = self._command(settings.get("command"))
        self.test_argv, self.reload_argv = self._nginx_commands(settings)
        self.pid_file = self._pid_file(settings)
        self.url: str | None = settings.get("url")
        self.health_path = str(settings.get("health_path", "/health"))
        self.version_path = str(settings.get("version_path", "/version"))
        self.timeout = self._seconds(settings, "timeout", 30)
        self.health_timeout = self._seconds(settings, "health_timeout", 5)
        self.start_timeout = self._seconds(settings, "start_timeout", 10)
        self.switch_timeout = self._seconds(settings, "switch_timeout", 10)
        self.drain_timeout = self._seconds(settings, "drain_timeout", 10)
        access_log = settings.get("access_log")
        if access_log is not None and not (isinstance(access_log, str) and access_log):
            self._config("settings.access_log must be the path of nginx's access log")
        self.access_log = Path(access_log) if access_log else None
        self.supervisor = ProcessSupervisor(self.state_dir, label=self.label)
        self.fence = EpochFence(self.state_dir, self.label)

    # --- settings ---

    def _config(self, cause: str) -> NoReturn:
        raise ConfigError(f"{self.label}: {cause}")

    def _fail(self, cause: str) -> NoReturn:
        raise AdapterError(f"{self.label}: {cause}")

    def _port(self, settings: Mapping[str, Any], key: str) -> int:
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            self._config(f"settings.{key} must be a TCP port number, got {value!r}")
        return value

    def _seconds(self, settings: Mapping[str, Any], key: str, default: float) -> float:
        value = settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self._config(f"settings.{key} must be a positive number of seconds")
        return float(value)

    def _argv_setting(self, value: object, key: str) -> list[str]:
        if not (isinstance(value, list) and value and all(isinstance(a, str) for a in value)):
            self._config(f"settings.{key} must be a non-empty list of strings (an argv, no shell)")
        return list(value)

    def _command(self, value: object) -> tuple[list[str], bool]:
        if value is None:
            return list(demo_app.COMMAND), True
        command = self._argv_setting(value, "command")
        try:
            used = placeholders(command)
        except ValueError as exc:
            self._config(f"settings.command: {exc}")
        for name in sorted(used):
            if name not in COMMAND_PLACEHOLDERS and not name.startswith("config["):
                self._config(f"settings.command: unknown placeholder {{{name}}}")
        return command, False

    def _nginx_commands(self, settings: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        test, reload = settings.get("test"), settings.get("reload")
        if test is not None and reload is not None:
            return self._argv_setting(test, "test"), self._argv_setting(reload, "reload")
        conf = settings.get("nginx_conf")
        if not isinstance(conf, str) or not conf:
            self._config("settings.nginx_conf is required (or both test and reload commands)")
        extra = settings.get("nginx_args", [])
        if not (isinstance(extra, list) and all(isinstance(a, str) for a in extra)):
            self._config("settings.nginx_args must be a list of strings")
        base = [str(settings.get("nginx", "nginx")), *extra, "-c", conf]
        return (
            self._argv_setting(test, "test") if test is not None else [*base, "-t"],
            self._argv_setting(reload, "reload") if reload is not None else [*base, "-s", "reload"],
        )

    def _pid_file(self, settings: Mapping[str, Any]) -> Path | None:
        """Where nginx keeps its master pid: the setting, else an absolute `pid` directive in
        nginx_conf. Without it a switch cannot wait for the old workers to stop accepting."""
        if settings.get("pid_file"):
            return Path(str(settings["pid_file"]))
        conf = settings.get("nginx_conf")
        if not isinstance(conf, str):
            return None
        try:
            text = Path(conf).read_text(encoding="utf-8")
        except OSError:
            return None
        found = re.search(r"^\s*pid\s+(/[^;\s]+)\s*;", text, re.MULTILINE)
        return Path(found.group(1)) if found else None

    def _master(self) -> int | None:
        if self.pid_file is None:
            return None
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    # --- state ---

    def log_path(self, color: Color) -> Path:
        return self.state_dir / "logs" / f"{color}.log"

    def _staged_path(self, color: Color) -> Path:
        return self.state_dir / f"staged-{color}.json"

    def _staged(self, color: Color) -> dict[str, Any]:
        return read_state(self._staged_path(color), self.label)

    def _forget(self, color: Color) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._staged_path(color).unlink()

    # --- Target ---

    def live_color(self) -> Color | None:
        servers = self._servers()
        return None if servers is None else self._color_of(servers[0].port)

    def _servers(self) -> list[Server] | None:
        """The include's servers, the live one first (a canary second); None without the file."""
        try:
            text = self.include_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._fail(f"cannot read {self.include_file}: {exc.strerror or exc}")
        servers = read_servers(text, self.upstream)
        if servers is None:
            self._fail(f"{self.include_file} has no 'upstream {self.upstream}' block")
        ports = [s.port for s in servers]
        if not 1 <= len(ports) <= 2 or len(set(ports)) != len(ports):
            self._fail(
                f"upstream {self.upstream} should name one loopback server (two during a "
                f"canary), found ports {ports}"
            )
        for port in ports:
            self._color_of(port)
        return servers

    def _color_of(self, port: int) -> Color:
        for color in COLORS:
            if self.ports[color] == port:
                return color
        self._fail(f"upstream {self.upstream} points at port {port}, neither blue nor green")

    def staged_version(self, color: Color) -> str | None:
        if not self.supervisor.is_running(color):
            return None
        version = self._staged(color).get("version")
        return str(version) if version is not None else None

    def endpoint(self) -> str | None:
        return self.url

    def color_endpoint(self, color: Color) -> str:
        """Each color listens on its own loopback port, behind nginx's upstream."""
        return f"http://127.0.0.1:{self.ports[color]}"

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        """Start the release on `color`'s port (nginx sends it nothing yet). Idempotent: the
        same argv already running is left alone. The live color is refused while it runs; when
        nothing runs there (first deploy: the include nginx started with names blue) it is the
        place to start."""
        with self.fence.hold(epoch):
            if self.live_color() == color and self.supervisor.is_running(color):
                self._fail(f"refusing to stage {release.version!r} on {color}: it is live")
            values = {
                "app": self.app,
                "env": self.env,
                "color": color,
                "port": self.ports[color],
                "version": release.version,
                "commit": release.commit,
                "digest": release.digest,
                "config": release.config,
            }
            try:
                argv = render_argv(self.command, values, missing_config="" if self._demo else None)
            except ValueError as exc:
                self._fail(f"settings.command: {exc}")
            if self._staged(color).get("argv") == argv and self.supervisor.is_running(color):
                return
            self._forget(color)  # never describe a process we are about to stop
            self.supervisor.stop(color)
            self._start(color, argv)
            record = {
                "version": release.version,
                "commit": release.commit,
                "digest": release.digest,
                "argv": argv,
            }
            atomic_write_text(self._staged_path(color), json.dumps(record, indent=2) + "\n")

    def health(self, color: Color) -> Health:
        if not self.supervisor.is_running(color):
            return Health(False, f"{color} is not running")
        base = f"http://127.0.0.1:{self.ports[color]}"
        try:
            status, body = http_get(base + self.health_path, self.health_timeout)
            version = None
            if self.version_path:
                v_status, v_body = http_get(base + self.version_path, self.health_timeout)
                version = v_body.strip() if v_status == 200 else None
        except (OSError, http.client.HTTPException) as exc:
            return Health(
                False, f"{color} on port {self.ports[color]}: {exc or type(exc).__name__}"
            )
        ok = status == 200
        detail = f"GET {self.health_path} on {color} -> {status} {one_line(body, 120)}".strip()
        staged = self._staged(color).get("version")
        if version is not None and staged is not None and version != staged:
            ok = False
            detail += f"; serves {one_line(version, 120)!r}, staged {one_line(str(staged), 120)!r}"
        return Health(ok, detail, version)

    def switch(self, color: Color, epoch: int) -> None:
        """All new traffic to `color`: the include names it alone, which ends any canary split."""
        with self.fence.hold(epoch):
            port = self._answering(color, "switch to")
            wanted = render_include(self.upstream, port, color)
            previous = self._apply(wanted, f"switch to {color}")
            self._confirm(color, previous)

    def _answering(self, color: Color, action: str) -> int:
        port = self.ports[color]
        if not answers(port):
            self._fail(f"refusing to {action} {color}: nothing answers on 127.0.0.1:{port}")
        return port

    def _apply(self, wanted: str, action: str) -> str | None:
        """Make `wanted` the include nginx serves from: write it, `nginx -t`, reload gracefully;
        on a failure put the previous file back (reloading again, in case the failed reload
        half-applied) and fail naming `action`. Returns the previous text (None: no file)."""
        try:
            previous: str | None = self.include_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            previous = None
        if previous == wanted:
            return previous
        atomic_write_text(self.include_file, wanted)
        try:
            self._nginx("test", self.test_argv)
        except AdapterError as exc:
            self._restore(previous)  # nginx never saw it
            self._fail(f"{action} failed, previous upstream restored: {exc}")
        try:
            self._reload()
        except AdapterError as exc:
            self._restore(previous)
            with contextlib.suppress(AdapterError):
                self._reload()
            self._fail(f"{action} failed, previous upstream restored: {exc}")
        return previous

    def _nginx(self, step: str, argv: list[str]) -> None:
        run = run_argv(argv, self.timeout, label=f"nginx {step}")
        if run.returncode != 0:
            raise AdapterError(
                f"nginx {step} failed: {nginx_process.complaint(run.stderr + run.stdout)}"
            )

    def _reload(self) -> None:
        """Reload gracefully and return once no old worker takes new connections: only then
        does all new traffic go to the new upstream (the old ones finish what they have)."""
        master = self._master()
        old = nginx_process.accepting_workers(master) if master is not None else set()
        self._nginx("reload", self.reload_argv)
        deadline = time.monotonic() + self.switch_timeout
        while master is not None and old & nginx_process.accepting_workers(master):
            if time.monotonic() >= deadline:
                raise AdapterError(
                    f"nginx reload: old workers still accepting after {self.switch_timeout:g}s"
                )
            time.sleep(0.01)

    def _restore(self, previous: str | None) -> None:
        if previous is None:
            with contextlib.suppress(FileNotFoundError):
                self.include_file.unlink()
        else:
            atomic_write_text(self.include_file, previous)

    def _confirm(self, color: Color, previous: str | None) -> None:
        """nginx reloads asynchronously: read the version through the front URL until the new
        workers serve it. Without a url (or version_path) there is nothing to read it from."""
        version = self._staged(color).get("version")
        if not (self.url and self.version_path and version is not None):
            return
        deadline = time.monotonic() + self.switch_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                status, body = http_get(self.url.rstrip("/") + self.version_path, 2.0)
                if status == 200 and body.strip() == version:
                    return
                last = f"{status} {one_line(body, 120)!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.05)
        if previous is not None:
            self._restore(previous)
            with contextlib.suppress(AdapterError):
                self._reload()
        self._fail(
            f"switch to {color} not confirmed within {self.switch_timeout:g}s "
            f"(GET {self.version_path} through {self.url}: {last}); switched back"
        )

    def stop_idle(self, color: Color, epoch: int) -> None:
        """Stop `color` once nginx sends it nothing: not while the include names it (live, or a
        canary with a share), and only once no old worker may still be proxying to it."""
        with self.fence.hold(epoch):
            servers = self._servers() or []
            if servers and self._color_of(servers[0].port) == color:
                self._fail(f"refusing to stop {color}: it is live")
            if any(s.port == self.ports[color] for s in servers):
                self._fail(f"refusing to stop {color}: it takes a canary's share of traffic")
            self._drained()
            self._forget(color)
            self.supervisor.stop(color)

    def _drained(self) -> None:
        """Wait (at most drain_timeout) until nginx has no worker left shutting down: one may
        still be proxying requests to a color the include no longer names (the old live after a
        switch, a canary put back to 0). Past the timeout, or without pid_file, stop anyway."""
        master = self._master()
        deadline = time.monotonic() + self.drain_timeout
        while master is not None and not all(nginx_process.workers(master).values()):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)

    def restart(self, epoch: int) -> None:
        """Restart the live color's process in place. nginx answers 502 while it is down: a
        restart without downtime is a deploy of the same release to the idle color."""
        with self.fence.hold(epoch):
            color = self.live_color()
            if color is None:
                self._fail("cannot restart: nothing is live")
            argv = self._staged(color).get("argv")
            if not isinstance(argv, list):
                self._fail(f"cannot restart {color}: no staged release recorded")
            self.supervisor.stop(color)
            self._start(color, argv)

    def weights(self) -> TrafficWeights:
        """nginx splits requests by the include's server weights (see set_weight)."""
        return self

    # --- TrafficWeights ---

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        """`percent` of new requests to `canary_color` through a weighted upstream, under the
        fence and lock of a switch and applied the same way (nginx -t, graceful reload, the
        previous file back on a failure); 0 names the live server alone again."""
        if why := weight_problem(percent):
            self._fail(why)
        with self.fence.hold(epoch):
            live = self.live_color()
            if why := split_problem(percent, canary_color, live):
                self._fail(why)
            assert live is not None  # split_problem refuses a split with nothing live
            canary = None
            if percent > 0:
                port = self._answering(canary_color, f"send {percent}% to")
                canary = (port, canary_color, percent)
            wanted = render_include(self.upstream, self.ports[live], live, canary)
            self._apply(wanted, f"weight {percent}% to {canary_color}")

    def weight(self) -> int:
        return canary_percent(self._servers() or [])

    # --- metrics of a canary's analysis ---

    def metrics_problem(self) -> str | None:
        if self.access_log is None:
            return (
                "access_log: not set, and a canary's analysis on nginx counts each color's "
                "requests in nginx's access log (docs/canary.md)"
            )
        return None

    def metrics(self, color: Color, window: float) -> dict[str, float]:
        """`color`'s requests that ended in the last `window` seconds, read from the tail of
        the access log (see nginx_access_log); the log is opened without following a link."""
        if self.access_log is None:
            self._fail(f"settings.{self.metrics_problem()}")
        port = self.ports[color]
        lines = FileLogSource(self.access_log).newest_first()
        with contextlib.closing(lines):
            stats = window_stats(lines, [port], time.time() - window, self.label)
        counted = stats[port]
        return analysis_values(counted.requests, counted.responses, counted.latency)

    def close(self) -> None:
        """Nothing held between calls."""

    def teardown(self) -> None:
        """Stop both colors (for tests and demos); nginx itself is not ours to stop."""
        with self.fence.locked():
            for color in COLORS:
                self._forget(color)
                self.supervisor.stop(color)

    # --- processes ---

    def _start(self, color: Color, argv: list[str]) -> None:
        env = python_env() if self._demo else {"PYTHONUNBUFFERED": "1"}
        self.supervisor.start_serving(
            color, argv, self.log_path(color), self.ports[color], self.start_timeout, env
        )
