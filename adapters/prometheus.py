"""Prometheus' HTTP API as a canary analysis' MetricQueries port: one instant query, one number.

After Argo Rollouts' prometheus provider: `GET {address}/api/v1/query?query=...`, whose answer
must be a scalar or a vector of at most one series. An empty vector, NaN and ±Inf are no value
(the measurement is inconclusive, never a pass); several series are an error, since a condition
compares one number. Everything the server says is stripped to one line before it is repeated.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from shipdeck.adapters.webhook import no_redirect_opener
from shipdeck.core.domain.redact import one_line
from shipdeck.core.errors import AdapterError

TIMEOUT = 10.0  # seconds: a measurement that cannot be taken is an `error`, taken again later
_MAX_BODY = 1 << 20  # one series' answer is a few hundred bytes


class PrometheusQueries:
    """Asks whichever Prometheus a metric names (the address is part of the metric)."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._opener = no_redirect_opener()

    def value(self, address: str, query: str) -> float | None:
        parts = urlsplit(address)
        label = f"prometheus {parts.netloc}"
        url = f"{address.rstrip('/')}/api/v1/query?{urlencode({'query': query})}"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(_MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            raise AdapterError(f"{label}: HTTP {exc.code}: {_api_error(exc)}") from None
        except urllib.error.URLError as exc:
            raise AdapterError(f"{label}: cannot reach: {one_line(str(exc.reason))}") from None
        except OSError as exc:
            raise AdapterError(f"{label}: {one_line(str(exc))}") from None
        if len(body) > _MAX_BODY:
            raise AdapterError(f"{label}: the answer is over {_MAX_BODY} bytes")
        return one_value(label, _document(label, body))


def _document(label: str, body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AdapterError(f"{label}: the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise AdapterError(f"{label}: the answer is not a JSON object")
    if doc.get("status") != "success":
        raise AdapterError(f"{label}: {_reason(doc)}")
    return doc


def _api_error(exc: urllib.error.HTTPError) -> str:
    """The API's own `errorType: error` where the body has one (400 bad_data, 422, 503)."""
    raw = exc.read(64 * 1024)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return one_line(raw.decode("utf-8", "replace"), 200) or one_line(str(exc.reason), 200)
    return _reason(doc) if isinstance(doc, dict) else "the answer is not a JSON object"


def _reason(doc: dict[str, Any]) -> str:
    kind, error = doc.get("errorType"), doc.get("error")
    text = ": ".join(str(x) for x in (kind, error) if x) or f"status {doc.get('status')!r}"
    return one_line(text, 300)


def one_value(label: str, doc: dict[str, Any]) -> float | None:
    """The number in a successful answer (`data.resultType` scalar or vector); None for an empty
    vector or a value that is not finite."""
    data = doc.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "scalar":
        return _number(label, result)
    if kind != "vector" or not isinstance(result, list):
        shown = one_line(str(kind), 40)
        raise AdapterError(
            f"{label}: the query must return an instant vector or a scalar, not {shown}"
        )
    if not result:
        return None
    if len(result) > 1:
        raise AdapterError(
            f"{label}: the query must return one series, it returned {len(result)} "
            "(aggregate it, e.g. with sum(...))"
        )
    series = result[0]
    return _number(label, series.get("value") if isinstance(series, dict) else None)


def _number(label: str, pair: Any) -> float | None:
    """A `[timestamp, "value"]` pair's value; Prometheus writes NaN and ±Inf as strings too."""
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise AdapterError(f'{label}: a sample is not [time, "value"]')
    try:
        value = float(pair[1])
    except ValueError:
        raise AdapterError(f"{label}: a sample value is not a number") from None
    return value if math.isfinite(value) else None
