"""A private Prometheus (its TSDB in a temporary folder, a free loopback port) scraping given
loopback targets every second: the Prometheus canary tests start it here."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.moto_server import free_port

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: [{targets}]
"""


def require_prometheus() -> str:
    """The prometheus binary; without one the test skips, except under CI=true, where it fails."""
    binary = shutil.which("prometheus")
    if binary is not None:
        return binary
    message = "prometheus is not installed: apt-get install prometheus to enable this test"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must have it (.ci/run installs it)")
    pytest.skip(message)


@contextlib.contextmanager
def prometheus_server(
    binary: str, folder: Path, ports: Sequence[int], port: int | None = None
) -> Iterator[str]:
    """Prometheus on 127.0.0.1:`port` (a free one by default) scraping 127.0.0.1:P/metrics for
    each of `ports`, until the block ends; yields its base URL once /-/ready says so. Killed
    (its whole group) at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(
        CONFIG.format(targets=", ".join(f"'127.0.0.1:{p}'" for p in ports)), encoding="utf-8"
    )
    port = port or free_port()
    log = (folder / "prometheus.out").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until_ready(proc, url, folder / "prometheus.out")
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


def _until_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            output = log.read_text(errors="replace").strip()
            raise RuntimeError(f"prometheus did not get ready at {url}: {output[-500:]}")
        time.sleep(0.1)  # polling a condition with a deadline


def scraped(url: str, query: str, timeout: float = 60) -> None:
    """Return once `query` has a non-empty result (the targets were scraped); RuntimeError
    with the last answer if that does not happen in time."""
    deadline = time.monotonic() + timeout
    asked = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    answer: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            with urllib.request.urlopen(asked, timeout=2) as resp:
                answer = json.load(resp)
            if isinstance(answer, dict) and answer.get("data", {}).get("result"):
                return
        time.sleep(0.2)  # polling a condition with a deadline
    raise RuntimeError(f"prometheus never had a result for {query!r}: {answer}")
