"""`[sources.*]`: named artifact stores (a Hub endpoint, an S3 profile) that artifacts refer to."""

from __future__ import annotations

from typing import Any

from shipdeck.core.domain.config.collector import Collector
from shipdeck.core.domain.config.model import Source
from shipdeck.core.domain.config.schemas import SOURCE_KINDS, adapter_settings


def parse_sources(c: Collector, raw: dict[str, Any]) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for sname, sraw in raw.items():
        path = f"sources.{sname}"
        s = c.table(sraw, path)
        kind = c.get(s, path, "kind", str, required=True)
        if kind is None:
            continue
        if kind not in SOURCE_KINDS:
            c.unknown(f"{path}.kind", "source kind", kind, list(SOURCE_KINDS))
            continue
        cfg = adapter_settings(
            c,
            {"adapter": kind, **{k: v for k, v in s.items() if k != "kind"}},
            path,
            SOURCE_KINDS,
            "source kind",
        )
        if cfg:
            out[sname] = Source(sname, kind, cfg.settings)
    return out
