"""Redacting a status-shaped document (what `status -o json` does before it writes), against
encoding the same document as JSON.

    python -m bench --only redaction

`shipdeck.core.domain.redact.redact` over a document of the CONTRACT's `status` shape for 1,000
apps in 3 environments (--quick: 50 apps), in process, against `json.dumps` of the same document
(the encoder the CLI runs on it next). Judged on CPU time. Goal: <= 8.0x, which keeps the
redaction pass of issue 10's shapes within a few encodes of the document until status redacts
only where secrets can be (release config values and remote text).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bench.harness import Metric, Options, alternate, timed


def _cell(app: int, env: str) -> dict[str, Any]:
    h = hashlib.sha256(f"{app}/{env}".encode()).hexdigest()
    at = "2026-11-24T12:00:00+00:00"
    return {
        "env": env,
        "deployed": {"version": "1.2.3", "commit": h[:40], "digest": f"sha256:{h}",
                     "color": "blue", "at": at, "by": "alice"},
        "latest": {"version": "1.2.4", "commit": h[1:41], "digest": f"sha256:{h}"},
        "commits_behind": 3,
        "drift": False,
        "endpoint": "http://127.0.0.1:8601",
        "window": {"open": False, "next_open": at, "next_close": at},
        "lock": None,
        "artifacts": [{"name": "model", "change": "changed", "summary": "3 files (+1.2 MB)"}],
    }  # fmt: skip


def status_document(apps: int) -> dict[str, Any]:
    envs = ("staging", "canary", "prod")
    return {
        "workspace": "bench",
        "apps": [
            {"app": f"app-{i:04d}", "environments": [_cell(i, e) for e in envs]}
            for i in range(apps)
        ],
    }


def metrics(opts: Options) -> list[Metric]:
    from shipdeck.core.domain.redact import redact

    apps = max(opts.app_counts)
    doc = status_document(apps)
    ours, base = alternate(
        lambda: timed(lambda: redact(doc)),
        lambda: timed(lambda: json.dumps(doc, ensure_ascii=False)),
        opts.runs,
    )
    return [
        Metric(
            f"redact.status.{apps}apps",
            f"redact() of a status document, {apps} apps x 3 environments",
            "json.dumps of the same document",
            ours,
            base,
            ("<=", 8.0),
            by="cpu",
            extra={"apps": apps},
        )
    ]
