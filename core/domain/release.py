"""Release manifests: immutable, content-addressed, compared field by field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipdeck.core.domain.artifact_diff import diff_artifacts, summarize
from shipdeck.core.domain.canonical import canonical_bytes, digest_of
from shipdeck.core.domain.model_gates import ModelReport
from shipdeck.core.domain.redact import redact
from shipdeck.core.ports import ArtifactDiff, ArtifactFile, ResolvedArtifact


@dataclass(frozen=True)
class ArtifactEntry:
    name: str
    uri: str
    resolved: str | None
    digest: str | None = None
    files: tuple[tuple[str, int, str | None], ...] = ()  # (path, size, sha256)
    model: ModelReport | None = None  # model artifacts only: file classes, scan, licence

    def pinned(self) -> ResolvedArtifact:
        """This entry as the port's ResolvedArtifact, so one diff serves every source."""
        return ResolvedArtifact(
            self.name,
            self.uri,
            self.resolved or self.uri,
            self.digest or "",
            tuple(ArtifactFile(p, s, h) for p, s, h in self.files),
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "uri": self.uri,
            "resolved": self.resolved,
            "digest": self.digest,
            "files": [list(f) for f in self.files],
        }
        if self.model is not None:  # absent otherwise, so older manifests keep their digests
            out["model"] = self.model.as_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactEntry:
        return cls(
            d["name"],
            d["uri"],
            d.get("resolved"),
            d.get("digest"),
            tuple((str(p), int(s), h) for p, s, h in d.get("files", [])),
            ModelReport.from_dict(d["model"]) if d.get("model") else None,
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
            # Masked as stored: a URI may carry credentials (https://user:token@host,
            # s3://AKIA..:SECRET@bucket); they belong in the environment, not in the manifest.
            "artifacts": redact(
                [a.as_dict() for a in sorted(self.artifacts, key=lambda a: a.name)]
            ),
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
                {
                    "name": a.name,
                    "uri": a.uri,
                    "resolved": a.resolved,
                    "digest": a.digest,
                    **({"model": a.model.view()} if a.model is not None else {}),
                }
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
    diff: ArtifactDiff

    @property
    def summary(self) -> str:
        d = self.diff
        if d.changed_count == 0 and d.size_delta == 0:
            return f"{self.name} {self.change}: {self.old or '-'} → {self.new or '-'}"
        return summarize(d)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "old": self.old,
            "new": self.new,
            "files_added": list(self.diff.added),
            "files_removed": list(self.diff.removed),
            "files_changed": list(self.diff.changed),
            "size_delta": self.diff.size_delta,
            "summary": self.summary,
        }


def artifact_changes(
    old: Sequence[ArtifactEntry], new: Sequence[ArtifactEntry]
) -> list[ArtifactChange]:
    """What changed between two releases' artifacts, file by file where the sources listed files."""
    before = {a.name: a for a in old}
    after = {a.name: a for a in new}
    out: list[ArtifactChange] = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        pin_a = (a.resolved or a.uri) if a else None
        pin_b = (b.resolved or b.uri) if b else None
        if pin_a == pin_b:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        diff = diff_artifacts(a.pinned() if a else None, b.pinned() if b else None)
        out.append(ArtifactChange(name, change, pin_a, pin_b, diff))
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
