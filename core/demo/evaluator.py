"""The demo's evaluator: a tiny, deterministic stand-in for a model evaluation, so the eval gate
is visible in `shipdeck demo` (see [apps.model-server.targets.*.eval] in its shipdeck.toml).

    python -m shipdeck.core.demo.evaluator URL

It asks the staged color at URL which version it serves (GET /version: the gate really reaches
the color before the switch) and prints that version's metrics as one JSON object. Each minor
release is a little more accurate; a `-distilled` version is twice as fast but 10% less
accurate, which the gate's `max_regression` refuses.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
from urllib.parse import urlsplit

TIMEOUT = 10.0


def metrics(version: str) -> dict[str, float]:
    found = re.match(r"\d+\.(\d+)", version)
    minor = int(found.group(1)) if found else 0
    accuracy, latency = 0.86 + 0.01 * minor, 180.0 - 5 * minor
    if "distilled" in version:
        accuracy, latency = accuracy * 0.9, latency / 2
    return {"accuracy": round(accuracy, 4), "latency_ms": round(latency, 1)}


def served_version(url: str) -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/version")
        reply = conn.getresponse()
        body = reply.read(4096).decode("utf-8", "replace").strip()
    finally:
        conn.close()
    if reply.status != 200:
        raise OSError(f"GET {url}/version answered {reply.status}")
    return body


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shipdeck.core.demo.evaluator URL", file=sys.stderr)
        return 2
    try:
        version = served_version(argv[0])
    except (OSError, http.client.HTTPException) as exc:
        print(f"evaluator: cannot reach {argv[0]}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"version": version, **metrics(version)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
