"""`[notifications.*]`: webhooks told about plan and run events."""

from __future__ import annotations

from typing import Any

from shipdeck.core.domain.config.collector import Collector
from shipdeck.core.domain.config.model import NOTIFY_EVENTS, Notification


def parse_notifications(c: Collector, raw: dict[str, Any]) -> dict[str, Notification]:
    out: dict[str, Notification] = {}
    for nname, nraw in raw.items():
        path = f"notifications.{nname}"
        n = c.table(nraw, path)
        c.keys(n, path, {"url", "format", "events", "headers_env"})
        url = c.get(n, path, "url", str, required=True)
        fmt = c.choice(n, path, "format", ("json", "slack"), "json")
        events = c.strings(n, path, "events")
        for i, ev in enumerate(events):
            if ev not in NOTIFY_EVENTS:
                c.unknown(f"{path}.events[{i}]", "event", ev, list(NOTIFY_EVENTS))
        headers = c.table(n.get("headers_env"), f"{path}.headers_env")
        if url:
            out[nname] = Notification(
                nname, url, "slack" if fmt == "slack" else "json", events or NOTIFY_EVENTS, headers
            )
    return out
