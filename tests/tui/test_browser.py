"""`shipdeck serve` in a real headless Chromium (Debian's, driven by Playwright).

The page draws the terminal on a canvas, so the test reads what the browser received instead:
every websocket frame the page gets is fed to a terminal emulator (pyte) sized as the page asked,
which gives back the screen the auditor sees. Keys are typed into the page like a person would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto_server import free_port
from tests.support.workspace import WorkspaceFixture

CHROMIUM = Path("/usr/bin/chromium")
DEADLINE = 60.0
MATRIX_HEAD = re.compile(r"^\s*app\s+staging\s+prod\s*$")
EVENT_ROW = re.compile(r"^\s*\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")  # seq, time: one event


def require_browser() -> None:
    missing = [
        what
        for what, ok in (
            ("Debian's chromium (apt-get install -y chromium)", CHROMIUM.exists()),
            ("playwright (pip)", importlib.util.find_spec("playwright") is not None),
            ("pyte (pip)", importlib.util.find_spec("pyte") is not None),
        )
        if not ok
    ]
    if missing:
        message = "browser test needs " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class BrowserScreen:
    """The terminal the page shows, rebuilt from the frames it received."""

    def __init__(self) -> None:
        import pyte

        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)

    def received(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            self.stream.feed(payload)

    def sent(self, payload: bytes | str) -> None:
        message = json.loads(payload) if isinstance(payload, str) else None
        if isinstance(message, list) and message and message[0] == "resize":
            self.screen.resize(message[1]["height"], message[1]["width"])

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)


@pytest.fixture
def served(scenario: WorkspaceFixture) -> Iterator[str]:
    require_browser()
    port = free_port()
    env = {k: v for k, v in scenario.env().items() if k != "SHIPDECK_ACTOR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipdeck", "serve", "--port", str(port)],
        env=env, cwd=scenario.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "shipdeck serve did not listen"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def matrix_rows(text: str) -> list[str]:
    """The dashboard matrix's app rows: the non-blank lines under its 'app staging prod'."""
    lines = text.splitlines()
    head = next((n for n, line in enumerate(lines) if MATRIX_HEAD.match(line)), None)
    if head is None:
        return []
    rows = []
    for line in lines[head + 1 :]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def wait_for(page: Any, screen: BrowserScreen, ok: Callable[[str], bool], what: str) -> str:
    """Let the page run until the screen satisfies `ok` (or say what never appeared)."""
    deadline = time.monotonic() + DEADLINE
    while not ok(screen.text):
        assert time.monotonic() < deadline, f"{what} never appeared; screen:\n{screen.text}"
        page.wait_for_timeout(100)
    return screen.text


def test_auditor_browser_view(served: str) -> None:
    from playwright.sync_api import sync_playwright

    me = pwd.getpwuid(os.geteuid()).pw_name
    screen = BrowserScreen()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.on(
                "websocket",
                lambda ws: (
                    ws.on("framereceived", screen.received),
                    ws.on("framesent", screen.sent),
                ),
            )
            page.goto(served)
            shown = wait_for(page, screen, lambda t: len(matrix_rows(t)) >= 3, "the dashboard")
            # the three apps' rows (names may be cut: the first layout can predate the resize)
            assert [row.split()[0][:2] for row in matrix_rows(shown)] == ["mo", "ch", "we"]
            header = shown.splitlines()[0]
            assert "Dashboard" in header
            assert f"{me} (no role)" in header and "READ-ONLY" in header  # the server's OS user

            page.click("#terminal")
            page.keyboard.press("a")
            shown = wait_for(page, screen, lambda t: "Audit log" in t, "the audit log")
            wait_for(page, screen, lambda t: "deployment.recorded" in t, "audit rows")

            page.keyboard.press("/")
            page.keyboard.type("kind:release.created")
            page.keyboard.press("Enter")
            shown = wait_for(  # the count and the rows may come in separate frames
                page,
                screen,
                lambda t: (
                    "6 events  filter kind=release.created" in t
                    and len([ln for ln in t.splitlines() if EVENT_ROW.match(ln)]) == 6
                ),
                "the filtered audit log",
            )
            assert "6 events  filter kind=release.created" in shown
            rows = [line for line in shown.splitlines() if EVENT_ROW.match(line)]
            assert len(rows) == 6 and all("release.created" in row for row in rows)
        finally:
            browser.close()
