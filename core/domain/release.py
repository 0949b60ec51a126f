"""Release manifests: immutable, content-addressed, compared field by field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.domain.canonical import canonical_bytes, digest_of
from core.domain.redact import redact


@dataclass(frozen=True)
class ArtifactEntry:
    name: str
    uri: str
    resolved: str | None
    digest: str | None = None
    files: tuple[tuple[str, int, str | None], ...] = ()  # (path, size, sha256)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uri": self.uri,
            "resolved": self.resolved,
            "digest": self.digest,
            "files": [list(f) for f in self.files],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactEntry:
        return cls(
            d["name"],
            d["uri"],
            d.get("resolved"),
            d.get("digest"),
            tuple((str(p), int(s), h) for p, s, h in d.get("files", [])),
        )


@dataclass(frozen=True)
class Manifest:
    app: str
    version: str
    commit: str
    artifacts: tuple[ArtifactEntry, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "commit": self.commit,
            "artifacts": [a.as_dict() for a in sorted(self.artifacts, key=lambda a: a.name)],
            "config": redact(dict(self.config)),
        }

    def encode(self) -> bytes:
        return canonical_bytes(self.as_dict())

    @property
    def digest(self) -> str:
        return digest_of(self.as_dict())

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        d = json.loads(raw)
        return cls(
            d["app"],
            d["version"],
            d["commit"],
            tuple(ArtifactEntry.from_dict(a) for a in d.get("artifacts", [])),
            d.get("config", {}),
        )


@dataclass(frozen=True)
class ReleaseRecord:
    id: int
    manifest: Manifest
    digest: str
    notes: str
    created_at: datetime
    created_by: str

    @property
    def app(self) -> str:
        return self.manifest.app

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def commit(self) -> str:
        return self.manifest.commit

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "commit": self.commit,
            "digest": self.digest,
            "artifacts": [
                {"name": a.name, "uri": a.uri, "resolved": a.resolved, "digest": a.digest}
                for a in self.manifest.artifacts
            ],
            "config": dict(self.manifest.config),
            "notes": self.notes,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class ArtifactChange:
    name: str
    change: str  # added | removed | changed
    old: str | None
    new: str | None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    size_delta: int = 0

    @property
    def summary(self) -> str:
        if self.change != "changed":
            return f"{self.name} {self.change}"
        files = len(self.added) + len(self.removed) + len(self.changed)
        if not files:
            return f"{self.name} changed"
        return f"{self.name} changed: {files} file{'s' if files != 1 else ''}, {human_size(self.size_delta, signed=True)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "old": self.old,
            "new": self.new,
            "files_added": list(self.added),
            "files_removed": list(self.removed),
            "files_changed": list(self.changed),
            "size_delta": self.size_delta,
            "summary": self.summary,
        }


def human_size(n: int, signed: bool = False) -> str:
    sign = ("+" if n >= 0 else "-") if signed else ("-" if n < 0 else "")
    value = float(abs(n))
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            text = f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            return sign + text
        value /= 1000
    raise AssertionError("unreachable")


def artifact_changes(
    old: Sequence[ArtifactEntry], new: Sequence[ArtifactEntry]
) -> list[ArtifactChange]:
    """What changed between two releases' artifacts, file by file where the sources listed files."""
    before = {a.name: a for a in old}
    after = {a.name: a for a in new}
    out: list[ArtifactChange] = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if a is None and b is not None:
            out.append(
                ArtifactChange(
                    name, "added", None, b.resolved or b.uri, size_delta=sum(f[1] for f in b.files)
                )
            )
        elif b is None and a is not None:
            out.append(
                ArtifactChange(
                    name,
                    "removed",
                    a.resolved or a.uri,
                    None,
                    size_delta=-sum(f[1] for f in a.files),
                )
            )
        elif a is not None and b is not None and (a.resolved or a.uri) != (b.resolved or b.uri):
            fa = {p: (s, h) for p, s, h in a.files}
            fb = {p: (s, h) for p, s, h in b.files}
            out.append(
                ArtifactChange(
                    name,
                    "changed",
                    a.resolved or a.uri,
                    b.resolved or b.uri,
                    added=tuple(sorted(fb.keys() - fa.keys())),
                    removed=tuple(sorted(fa.keys() - fb.keys())),
                    changed=tuple(sorted(p for p in fa.keys() & fb.keys() if fa[p] != fb[p])),
                    size_delta=sum(s for s, _ in fb.values()) - sum(s for s, _ in fa.values()),
                )
            )
    return out


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ConfigChange]:
    missing = object()
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            out.append(ConfigChange(key, None if a is missing else a, None if b is missing else b))
    return out
