"""A private nginx (temporary prefix, loopback port, `daemon off`) in front of a blue/green pair:
the nginx adapter tests, the nginx model-release and canary tests and bench/nginx_switch.py all
start it here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from shipdeck.adapters.nginx import NginxTarget

NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format shipdeck '$msec $upstream_addr $status $upstream_response_time';
    access_log {prefix}/access.log shipdeck;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {include};
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://{upstream}; }}
    }}
}}
"""


def find_nginx() -> str | None:
    """nginx lives in /usr/sbin, which a non-login PATH may lack."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def require_nginx() -> str:
    """The nginx binary; without one the test skips, except under CI=true, where it fails."""
    binary = find_nginx()
    if binary is not None:
        return binary
    message = "nginx is not installed: apt-get install nginx (.ci/run does) to run this test"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must have it")
    pytest.skip(message)


@dataclass
class NginxFront:
    binary: str
    prefix: Path
    conf: Path
    include: Path
    upstream: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """Written in shipdeck's format (adapters/nginx_access_log.py): a canary's metrics."""
        return self.prefix / "access.log"

    def settings(self, blue_port: int, green_port: int, **extra: Any) -> dict[str, Any]:
        """NginxTarget settings for this nginx."""
        return {
            "include_file": str(self.include),
            "upstream": self.upstream,
            "blue_port": blue_port,
            "green_port": green_port,
            "nginx": self.binary,
            "nginx_conf": str(self.conf),
            "nginx_args": ["-p", str(self.prefix), "-e", "stderr"],
            "url": self.url,
            "access_log": str(self.access_log),
            **extra,
        }


@contextlib.contextmanager
def nginx_front(
    binary: str, prefix: Path, port: int, first_backend: int, upstream: str = "shipdeck_app"
) -> Iterator[NginxFront]:
    """A private nginx on 127.0.0.1:`port`, proxying to the upstream in its include file (first
    pointing at `first_backend`), stopped gracefully (then killed) on exit."""
    from shipdeck.adapters.nginx_include import render_include

    prefix.mkdir(parents=True, exist_ok=True)
    include = prefix / "upstream.conf"
    include.write_text(render_include(upstream, first_backend, "blue"), encoding="utf-8")
    conf = prefix / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read our private prefix
    conf.write_text(
        NGINX_CONF.format(user=user, prefix=prefix, include=include, port=port, upstream=upstream),
        encoding="utf-8",
    )
    log = (prefix / "nginx.out").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-e", "stderr", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (prefix / "nginx.out").read_text(errors="replace").strip()
                raise RuntimeError(f"nginx did not start on port {port}: {output[-500:]}")
            time.sleep(0.05)
        yield NginxFront(binary, prefix, conf, include, upstream, port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGQUIT)  # graceful: workers finish their requests
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@dataclass
class Rig:
    """A private nginx and an NginxTarget in front of it (blue and green on free ports)."""

    front: NginxFront
    target: NginxTarget
    blue: int
    green: int


@contextlib.contextmanager
def nginx_rig(tmp_path: Path, **settings: Any) -> Iterator[Rig]:
    """nginx_front plus a target for chat-api/prod (`settings` added), torn down on exit; skips
    without nginx (fails under CI=true)."""
    from shipdeck.adapters.nginx import NginxTarget
    from tests.support.moto_server import free_port

    binary = require_nginx()
    blue, green = free_port(), free_port()
    with nginx_front(binary, tmp_path / "nginx", free_port(), blue) as front:
        config = front.settings(blue, green, **settings)
        target = NginxTarget("chat-api", "prod", config, tmp_path / "st")
        try:
            yield Rig(front, target, blue, green)
        finally:
            target.teardown()
