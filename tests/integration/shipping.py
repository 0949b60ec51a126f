"""Workspaces whose apps have real `local` blue/green targets, for the plan and run tests.

Not a test module: tests/integration and tests/reliability import it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from shipdeck.core.services.context import Context, SystemClock
from tests.support.moto_server import free_port
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

APPS = ("model-server", "chat-api", "web")
ENVS = ("staging", "prod")


def local_toml(
    base: str = BASIC_TOML,
    *,
    warm: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    top: str = "",
    targets: dict[tuple[str, str], str] | None = None,
) -> str:
    """`base` plus a local target (three free loopback ports) for every app in every env.

    `warm` / `env_extra` add lines to [environments.E]; `top` adds whole tables (windows, freezes);
    `targets[(app, env)]` is the body of that target's table instead (another adapter).
    """
    text = base
    for env in ENVS:
        lines = []
        if warm and env in warm:
            lines.append(f'warm = "{warm[env]}"')
        if env_extra and env in env_extra:
            lines.append(env_extra[env])
        if lines:
            text = text.replace(
                f"[environments.{env}]\n", f"[environments.{env}]\n" + "\n".join(lines) + "\n"
            )
    parts = [top, text]
    for app in re.findall(r"^\[apps\.([a-z0-9-]+)\]$", base, flags=re.M):
        for env in ENVS:
            body = (targets or {}).get((app, env)) or (
                f'adapter = "local"\nport = {free_port()}\n'
                f"blue_port = {free_port()}\ngreen_port = {free_port()}\n"
            )
            parts.append(f"[apps.{app}.targets.{env}]\n{body}")
    return "\n".join(parts)


def live(ws: WorkspaceFixture, user: str = "alice") -> Context:
    """A context on the real clock: leases, holds and warm delays are real-time things."""
    return replace(ws.as_user(user), clock=SystemClock())


class _Reached(Exception):
    pass


def until_step(
    ctx: Context, plan_id: str, step: str, state: str, timeout: float = 120, detail: str = ""
) -> None:
    """Return once the plan's journal has `step` in `state` (its detail starting with `detail`;
    a condition, whatever the load), following it with the engine's own wait_run; TimedOut if
    the run never gets there."""
    from shipdeck.core.services.runs import wait_run

    def check(s: Any) -> None:
        if (s.step, s.state) == (step, state) and s.detail.startswith(detail):
            raise _Reached

    try:
        result = wait_run(ctx, plan_id, timeout=timeout, on_step=check)
    except _Reached:
        return
    raise AssertionError(f"plan {plan_id} ended {result.state} before {step} was {state}")


def stop_runners(ws: WorkspaceFixture) -> None:
    """SIGKILL detached runners still holding a lease (a failed test may leave one mid-run,
    and it would restart target processes after the teardown)."""
    import signal

    from sqlalchemy import select

    from shipdeck.core.storage.tables import LEASES

    lease = LEASES
    with ws.base.db.read() as conn:
        runners = [
            r for (r,) in conn.execute(select(lease.c.runner).where(lease.c.runner.is_not(None)))
        ]
    for runner in runners:
        pid = int(runner.split("|")[2])
        if pid != os.getpid() and not ws.base.processes.runner_dead(runner):
            os.kill(pid, signal.SIGKILL)


def teardown_targets(ws: WorkspaceFixture) -> None:
    """Stop every process the workspace's local (and nginx) targets started (tests must leave
    none)."""
    from shipdeck.adapters.local.target import LocalTarget
    from shipdeck.adapters.nginx import NginxTarget

    stop_runners(ws)
    cfg = ws.base.config
    for app, spec in cfg.apps.items():
        for env, t in spec.targets.items():
            state = ws.root / ".shipdeck" / "targets" / app / env
            kind = {"local": LocalTarget, "nginx": NginxTarget}.get(t.adapter)
            if kind is not None and state.exists():
                kind(app, env, t.settings, state).teardown()


@contextmanager
def shipping(ws: WorkspaceFixture, **kw: Any) -> Iterator[WorkspaceFixture]:
    ws.write_config(local_toml(**kw))
    try:
        yield ws
    finally:
        teardown_targets(ws)


def get_version(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/version")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def front_port(ws: WorkspaceFixture, app: str, env: str) -> int:
    return int(ws.base.config.apps[app].targets[env].settings["port"])


def release_all(ctx: Context, version: str, apps: Sequence[str] = APPS, **config: Any) -> None:
    from shipdeck.core.services.releases import create_release

    for app in apps:
        create_release(ctx, app, version, config=dict(config) or None)


def untracked_app_processes(ws: WorkspaceFixture) -> list[str]:
    """Processes running our demo app or proxy for this workspace that no supervisor tracks.

    Each as "pid state argv", so a failure says which process it was and whether it was exiting.
    """
    from shipdeck.adapters.local.processes import ProcessSupervisor

    tracked: set[int] = set()
    ports: set[str] = set()
    for app, spec in ws.base.config.apps.items():
        for env, t in spec.targets.items():
            state = ws.root / ".shipdeck" / "targets" / app / env
            sup = ProcessSupervisor(state)
            tracked |= {p for n in sup.names() if (p := sup.pid(n)) is not None}
            ports |= {str(t.settings[k]) for k in ("port", "blue_port", "green_port")}
    stray = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(a.startswith("shipdeck.adapters.local.") for a in argv):
            continue
        mentions = {a.removeprefix("--port=") for a in argv} | set(argv)
        if mentions & ports and int(proc.name) not in tracked:
            try:
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # gone while we looked: not a stray
            stray.append(f"{proc.name} {state} {' '.join(argv)}")
    return stray
