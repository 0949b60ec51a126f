"""Release-time model inspection: classify an artifact's files, scan its pickle-based weights
through the scanner port, read its licence and keep the Hub's own scan status.

Scanning is a read (nothing outside the database changes), so it needs no intent event; its
report goes into the manifest, which the release row's audit event already vouches for. A
source that cannot deliver a file fails the release (retry it); a file over the workspace's
`model_scan_limit_mib` is recorded as unscanned, which blocks wherever `scan = "block"`.
"""

from __future__ import annotations

import tempfile
from typing import Any

from shipdeck.core.domain.artifact_diff import format_size
from shipdeck.core.domain.model_gates import (
    Finding,
    ModelReport,
    classify,
    is_model,
    license_from_card,
    license_from_text,
)
from shipdeck.core.ports import ArtifactSource, ResolvedArtifact, WeightScanner

CARD_LIMIT = 1 << 20  # model cards and LICENSE files are read up to 1 MiB
_CARDS = ("readme.md",)
_LICENSES = ("license", "license.txt", "license.md")
_HUB_FLAGGED = frozenset({"unsafe"})  # levels of the Hub's filesWithIssues that count as findings


def inspect(
    source: ArtifactSource, art: ResolvedArtifact, scanner: WeightScanner | None, limit: int
) -> ModelReport | None:
    """The model report of `art`, or None when none of its files is weights."""
    classes = tuple((f.path, classify(f.path)) for f in art.files)
    if not is_model(classes):
        return None
    findings: list[Finding] = []
    for f in art.files:
        if classify(f.path) != "pickle":
            continue
        if f.size > limit:
            why = (
                f"{format_size(f.size)}, over the {limit >> 20} MiB scan limit: raise "
                "workspace.model_scan_limit_mib to scan it"
            )
            findings.append(Finding(f.path, "unscanned", why))
            continue
        if scanner is None:
            findings.append(Finding(f.path, "unscanned", "no scanner configured"))
            continue
        with tempfile.TemporaryFile() as tmp:
            source.fetch(art, f.path, tmp, limit)
            tmp.seek(0)
            outcome = scanner.scan(f.path, tmp)
        findings.extend(Finding(f.path, "import", d) for d in outcome.dangerous)
        if outcome.error:
            findings.append(Finding(f.path, "unscanned", outcome.error))
    hub = art.meta.get("hub_scan")
    findings.extend(_hub_findings(hub))
    licence, where = _licence(source, art)
    return ModelReport(
        classes, tuple(findings), licence, where, hub if isinstance(hub, dict) else None
    )


def _hub_findings(hub: Any) -> list[Finding]:
    """Files the Hub's securityRepoStatus lists with an unsafe level."""
    if not isinstance(hub, dict):
        return []
    return [
        Finding(str(item["path"]), "hub", str(item["level"]))
        for item in hub.get("filesWithIssues") or []
        if isinstance(item, dict) and item.get("level") in _HUB_FLAGGED and "path" in item
    ]


def _licence(source: ArtifactSource, art: ResolvedArtifact) -> tuple[str | None, str | None]:
    """The card's `license:` first (what the Hub shows), else a top-level LICENSE file's text."""
    top = {f.path.lower(): f for f in art.files if "/" not in f.path}
    for names, read in ((_CARDS, license_from_card), (_LICENSES, license_from_text)):
        for name in names:
            f = top.get(name)
            if f is None or f.size > CARD_LIMIT:
                continue
            found = read(_text(source, art, f.path))
            if found:
                return found, f.path
    return None, None


def _text(source: ArtifactSource, art: ResolvedArtifact, path: str) -> str:
    with tempfile.TemporaryFile() as tmp:
        source.fetch(art, path, tmp, CARD_LIMIT)
        tmp.seek(0)
        return tmp.read().decode("utf-8", errors="replace")
