"""Probes on 127.0.0.1 shared by the targets that run their backends on this machine (local,
nginx): is a port free, does something answer on it, and a GET that no proxy setting reroutes."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """(status, body) of a GET through http.client: HTTP(S)_PROXY variables, which urllib would
    honour, must not send a loopback check elsewhere. The body is capped at 64 KiB."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read(64 * 1024).decode("utf-8", "replace")
    finally:
        conn.close()
