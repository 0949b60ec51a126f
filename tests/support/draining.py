"""Stopping a local target's colour while a request routed to it is still open: the stop must
wait for it, and the request must still be answered by that colour."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest


def stop_while_held(
    target: Any, monkeypatch: pytest.MonkeyPatch, held: socket.socket, color: str
) -> bytes:
    """Stop `color` in a thread, wait until the stop is waiting on the proxy's drain, then finish
    the held request; returns its answer once the stop is through."""
    waiting = threading.Event()
    is_running = target.supervisor.is_running

    def spy(name: str) -> bool:
        if name == "proxy":  # asked only while the stop waits for the colour's connections
            waiting.set()
        return bool(is_running(name))

    monkeypatch.setattr(target.supervisor, "is_running", spy)
    stopper = threading.Thread(target=target.stop_idle, args=(color, 1))
    stopper.start()
    assert waiting.wait(30), "stop_idle did not wait for the proxy"
    held.sendall(b"\r\n")
    answer = b""
    while chunk := held.recv(4096):
        answer += chunk
    held.close()
    stopper.join(30)
    assert not stopper.is_alive() and target.staged_version(color) is None
    return answer
