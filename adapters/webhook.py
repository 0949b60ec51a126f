"""Notifications to a webhook: plain JSON for the team's own receiver, or Slack's message shape.

A notification is a courtesy, never a gate: send() raises AdapterError and the caller records the
failure in the audit log and carries on. Webhook URLs are often secrets themselves (a Slack
incoming webhook's path is its credential), so messages name only the host.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from shipdeck.core.domain.redact import one_line, strip_controls
from shipdeck.core.errors import AdapterError, ConfigError

Format = Literal["json", "slack"]
# Slack limits: a section's text 3000 characters, a field 2000, at most 10 fields.
_FIELD_LIMIT = 10
_FIELD_CHARS = 1900
_SUMMARY_KEYS = ("app", "env", "version", "plan", "actor", "state")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def no_redirect_opener() -> urllib.request.OpenerDirector:
    """An opener that reports a redirect as an HTTP error instead of following it: following
    would replay our headers (bearer tokens) to whatever place the server names."""
    return urllib.request.build_opener(_NoRedirect())


def _mrkdwn(value: object) -> str:
    """Slack mrkdwn escaping (only &, <, > are special), after removing control sequences."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = " ".join(strip_controls(line) for line in text.splitlines())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """{"text": fallback line, "blocks": [header section, fields section]} for Slack."""
    facts = [f"{k}={payload[k]}" for k in _SUMMARY_KEYS if payload.get(k) is not None]
    text = _mrkdwn(f"shipdeck: {event}" + (f" ({', '.join(facts)})" if facts else ""))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_mrkdwn(event)}*"}}
    ]
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{_mrkdwn(key)}*\n{_mrkdwn(value)}", _FIELD_CHARS)}
        for key, value in list(payload.items())[:_FIELD_LIMIT]
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    return {"text": _cut(text, 2900), "blocks": blocks}


class WebhookNotifier:
    """POSTs one JSON document per event. `headers` maps a header name to the NAME of the
    environment variable holding its value, read at send time (tokens stay out of config)."""

    def __init__(
        self,
        url: str,
        format: str = "json",
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        self.label = f"webhook {host}:{parts.port}" if parts.port else f"webhook {host}"
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"{self.label}: url must be http or https")
        if format not in ("json", "slack"):
            raise ConfigError(f"{self.label}: format must be json or slack, not {format!r}")
        self.url = url
        self.format: Format = "slack" if format == "slack" else "json"
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._opener = no_redirect_opener()

    def body(self, event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        if self.format == "slack":
            return slack_message(event, payload)
        return {
            "event": event,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "payload": dict(payload),
        }

    def send(self, event: str, payload: Mapping[str, Any]) -> None:
        secrets: list[str] = []
        headers = {"Content-Type": "application/json", "User-Agent": "shipdeck"}
        for name, variable in self.headers.items():
            value = os.environ.get(variable)
            if not value:
                raise AdapterError(
                    f"{self.label}: environment variable {variable} (header {name}) is not set"
                )
            headers[name] = value
            secrets.append(value)
        data = json.dumps(self.body(event, payload), default=str).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")

        def clean(text: str) -> str:
            for secret in [*secrets, urlsplit(self.url).path]:
                if len(secret) > 1:
                    text = text.replace(secret, "***")
            return one_line(text, limit=200)

        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(1 << 16)
        except urllib.error.HTTPError as exc:
            detail = clean(exc.read(1024).decode("utf-8", "replace")) or clean(str(exc.reason))
            raise AdapterError(f"{self.label}: {event}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise AdapterError(
                f"{self.label}: {event}: cannot reach: {clean(str(exc.reason))}"
            ) from None
        except OSError as exc:
            raise AdapterError(f"{self.label}: {event}: {clean(str(exc))}") from None
