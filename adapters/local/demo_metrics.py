"""The demo app's own counters in Prometheus' text exposition format (version 0.0.4), so a real
Prometheus can scrape a color and a canary analysis can query it:

    demo_responses_total{app="web",color="blue",version="1.2.0",code="200"} 1027
    demo_request_duration_seconds_bucket{app="web",color="blue",version="1.2.0",le="0.005"} 1020

Every answer but the scrape itself is counted (GET /metrics is not, so scraping adds no traffic).
The codes its traffic answers, 200 and 500, are exported at 0 from the start: a ratio of errors
to responses then has a numerator before the first error, as the Prometheus guide advises.
"""

from __future__ import annotations

import threading
from collections import Counter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Prometheus' default histogram buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ALWAYS = (200, 500)


def label_value(text: str) -> str:
    """A label value in the exposition format: backslash, double quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class DemoMetrics:
    """Responses by status code, and their durations, for one process (one color, one version)."""

    def __init__(self, app: str, color: str, version: str) -> None:
        self.labels = ",".join(
            f'{k}="{label_value(v)}"'
            for k, v in (("app", app), ("color", color), ("version", version))
        )
        self._codes: Counter[int] = Counter({code: 0 for code in _ALWAYS})
        self._buckets = [0] * len(BUCKETS)
        self._sum = 0.0
        self._count = 0
        self._guard = threading.Lock()

    def observe(self, code: int, seconds: float) -> None:
        with self._guard:
            self._codes[code] += 1
            self._count += 1
            self._sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

    def render(self) -> str:
        with self._guard:
            codes = sorted(self._codes.items())
            buckets, total, count = list(self._buckets), self._sum, self._count
        lines = [
            "# HELP demo_responses_total Responses the demo app sent, by status code.",
            "# TYPE demo_responses_total counter",
            *(f'demo_responses_total{{{self.labels},code="{c}"}} {n}' for c, n in codes),
            "# HELP demo_request_duration_seconds Time from a request to its answer.",
            "# TYPE demo_request_duration_seconds histogram",
            *(
                f'demo_request_duration_seconds_bucket{{{self.labels},le="{b!r}"}} {n}'
                for b, n in zip(BUCKETS, buckets, strict=True)
            ),
            f'demo_request_duration_seconds_bucket{{{self.labels},le="+Inf"}} {count}',
            f"demo_request_duration_seconds_sum{{{self.labels}}} {total!r}",
            f"demo_request_duration_seconds_count{{{self.labels}}} {count}",
        ]
        return "\n".join(lines) + "\n"
