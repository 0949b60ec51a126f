"""nginx's access log as the metrics of a canary's analysis on the nginx target.

nginx writes one line per request as the request ends, in the format shipdeck documents:

    log_format shipdeck '$msec $upstream_addr $status $upstream_response_time';
    access_log /var/log/nginx/shipdeck-web.log shipdeck;

`$upstream_addr` names the server that answered (several, `a, b`, when nginx moved on to the next
server after an error or a timeout; groups `a : b` after an internal redirect), so the server's
port says which color served the request. A color's values over a window are counted from the
lines whose `$msec` falls inside it, read from the end of the file backwards: only the tail that
covers the window is read, however large the log. The answer the client got counts for the last
server named; a server nginx moved on from counts a request and a 5xx (it failed that request).

Lines are remote text (a request's timing is the client's doing, and anything writable by nginx
may be edited): a line that does not parse is skipped, never trusted, and none of it is quoted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

from shipdeck.adapters.local.proxy_metrics import BackendStats, status_class
from shipdeck.core.errors import AdapterError

LOG_FORMAT = "log_format shipdeck '$msec $upstream_addr $status $upstream_response_time';"
# nginx writes a line when its request ends, and several workers write to one file: a line a
# little older than one above it is normal. Reading goes this far past the window's start.
SLACK = 2.0
# A log this many lines deep without one line in the format is not in the format: say so rather
# than read a whole large file on every measurement.
GIVE_UP = 1000
_SEP = r"(?:, | : )"
_LINE = re.compile(
    rf"(\d{{9,11}}\.\d{{3}}) ([^\s,]+(?:{_SEP}[^\s,]+)*) ([1-5]\d\d) ([\d.-]+(?:{_SEP}[\d.-]+)*)"
)


def _port(addr: str) -> int | None:
    host, sep, port = addr.rpartition(":")
    return int(port) if sep and host and port.isdigit() and len(port) <= 5 else None


def _count(stats: dict[int, BackendStats], addrs: str, status: int, times: str) -> None:
    """One request: the last group of servers (after any internal redirect), each one nginx
    moved on from a failed request of its own, the last one the answer the client got."""
    tried = addrs.split(" : ")[-1].split(", ")
    took = times.split(" : ")[-1].split(", ")
    for i, addr in enumerate(tried):
        port = _port(addr)
        if port is None or port not in stats:
            continue
        backend = stats[port]
        backend.requests += 1
        if i < len(tried) - 1:
            backend.responses["5xx"] += 1
            continue
        backend.responses[status_class(status)] += 1
        seconds = took[-1] if len(took) == len(tried) else "-"
        with contextlib.suppress(ValueError):  # "-": no response head was read
            backend.observe_latency(float(seconds))


def window_stats(
    newest_first: Iterable[str], ports: Iterable[int], start: float, where: str
) -> dict[int, BackendStats]:
    """Port -> counts of the requests that ended at or after `start` (unix seconds), from log
    lines given newest first; consumes them only to SLACK seconds before `start`."""
    stats = {port: BackendStats() for port in ports}
    parsed = skipped = 0
    for line in newest_first:
        found = _LINE.fullmatch(line.strip())
        if found is None:
            skipped += 1
            if parsed == 0 and skipped >= GIVE_UP:
                raise AdapterError(
                    f"{where}: the last {GIVE_UP} lines of access_log are not in shipdeck's "
                    f"format ({LOG_FORMAT})"
                )
            continue
        parsed += 1
        at = float(found.group(1))
        if at < start - SLACK:
            break
        if at >= start:
            _count(stats, found.group(2), int(found.group(3)), found.group(4))
    return stats
