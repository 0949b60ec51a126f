"""The include file the nginx target writes: one upstream, the live server first, and while a
canary runs the canary server second, each with its share as nginx's `weight`:

    upstream NAME {
        server 127.0.0.1:LIVE weight=75;
        server 127.0.0.1:CANARY weight=25;
    }

nginx's weighted round robin (smooth, per worker) sends the canary exactly that share of new
requests, evenly spread. The file is what live_color and weight() read: it is what nginx serves
from. At 100% the live server stays listed, marked `down`, so the file still says which it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipdeck.core.ports import Color

_SERVER = re.compile(r"\bserver\s+(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)([^;]*);")
_WEIGHT = re.compile(r"\bweight=(\d+)\b")
_DOWN = re.compile(r"\bdown\b")


@dataclass(frozen=True)
class Server:
    """One `server` line of the upstream: its loopback port and its share of requests."""

    port: int
    weight: int = 1  # nginx's default; 0 stands for `down` (it gets none)


def render_include(
    upstream: str, port: int, color: Color, canary: tuple[int, Color, int] | None = None
) -> str:
    """The include sending everything to `port` (the live `color`), or with `canary` (its port,
    color and percent, 1 to 100) that share to the canary and the rest to the live server."""
    if canary is None:
        return (
            f"# written by shipdeck: live color {color}; edits here are overwritten\n"
            f"upstream {upstream} {{\n    server 127.0.0.1:{port};\n}}\n"
        )
    canary_port, canary_color, percent = canary
    live = "down" if percent == 100 else f"weight={100 - percent}"
    return (
        f"# written by shipdeck: live color {color}, canary {canary_color} at {percent}%; "
        "edits here are overwritten\n"
        f"upstream {upstream} {{\n    server 127.0.0.1:{port} {live};\n"
        f"    server 127.0.0.1:{canary_port} weight={percent};\n}}\n"
    )


def read_servers(text: str, upstream: str) -> list[Server] | None:
    """The loopback servers of `upstream` in the include's text, in order (comments ignored);
    None when there is no such upstream block."""
    code = re.sub(r"#[^\n]*", "", text)
    block = re.search(rf"\bupstream\s+{re.escape(upstream)}\s*\{{([^}}]*)\}}", code)
    if block is None:
        return None
    servers = []
    for port, params in _SERVER.findall(block.group(1)):
        weight = _WEIGHT.search(params)
        share = 0 if _DOWN.search(params) else int(weight.group(1)) if weight else 1
        servers.append(Server(int(port), share))
    return servers


def canary_percent(servers: list[Server]) -> int:
    """The share of requests the second (canary) server gets, in percent; 0 without one."""
    if len(servers) < 2:
        return 0
    total = servers[0].weight + servers[1].weight
    return round(100 * servers[1].weight / total) if total else 0
