"""Recording and reading releases: the immutable manifests every plan ships."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipdeck.core.domain.config import App
from shipdeck.core.domain.redact import redact_text
from shipdeck.core.domain.release import (
    ArtifactChange,
    ArtifactEntry,
    ConfigChange,
    Manifest,
    ReleaseRecord,
    artifact_changes,
    config_changes,
)
from shipdeck.core.domain.versions import VersionOrder, is_downgrade, version_problem
from shipdeck.core.errors import ConflictError, IntegrityError, NotFoundError, UsageError
from shipdeck.core.ports import CommitInfo
from shipdeck.core.services.context import Context
from shipdeck.core.services.model_scan import inspect
from shipdeck.core.storage import releases
from shipdeck.core.storage.binding import Problem
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.releases import ReleaseRow, ReleaseVersion


def app_config(ctx: Context, app: str) -> App:
    try:
        return ctx.config.apps[app]
    except KeyError:
        known = ", ".join(sorted(ctx.config.apps)) or "none"
        raise NotFoundError(f"unknown app '{app}' (known: {known})") from None


def repo_path(ctx: Context, app: App) -> Path:
    path = Path(app.repo)
    return path if path.is_absolute() else ctx.workspace / path


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE options; a malformed one names the option and the text."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"--{what} '{pair}': expected NAME=VALUE")
        out[name] = value
    return out


def _resolve_artifact(ctx: Context, spec: App, name: str, uri: str) -> ArtifactEntry:
    """Pin an artifact through its source: the one named in the app's config, else by scheme.
    URIs no source knows (image references, plain URLs) are recorded as given."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    configured = next((a.source for a in spec.artifacts if a.name == name and a.source), None)
    source = ctx.sources(configured or scheme) if (configured or scheme) else None
    if source is None:
        return ArtifactEntry(name, uri, None)
    art = source.resolve(name, uri)
    return ArtifactEntry(
        name,
        uri,
        art.resolved,
        art.digest,
        tuple((f.path, f.size, f.sha256) for f in art.files),
        inspect(source, art, ctx.scanner, ctx.config.model_scan_limit),
    )


def _record(row: ReleaseRow) -> ReleaseRecord:
    return ReleaseRecord(
        id=row.id,
        manifest=Manifest.decode(row.manifest),
        digest=row.digest,
        notes=row.notes,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _manifest(
    ctx: Context,
    spec: App,
    version: str,
    commit: str | None,
    artifacts: dict[str, str],
    config: dict[str, Any],
) -> Manifest:
    """What the release pins: the commit resolved, each artifact resolved through its source
    (and scanned), and the app's config with the overrides given."""
    return Manifest(
        app=spec.name,
        version=version,
        commit=ctx.git.resolve(repo_path(ctx, spec), commit or "HEAD"),
        artifacts=tuple(_resolve_artifact(ctx, spec, n, u) for n, u in sorted(artifacts.items())),
        config={**spec.config, **config},
    )


@dataclass(frozen=True)
class Created:
    release: ReleaseRecord
    created: bool  # False when an identical release already existed


def create_release(
    ctx: Context,
    app: str,
    version: str,
    *,
    commit: str | None = None,
    artifacts: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    notes: str = "",
) -> Created:
    """Record an immutable release; identical content is idempotent, different content refused."""
    spec = app_config(ctx, app)
    ctx.require("release.create", app=app)
    problem = version_problem(ctx.config.versions, version)
    if problem is not None:
        raise UsageError(problem)
    wanted = {a.name: a.uri for a in spec.artifacts}
    wanted.update(artifacts or {})
    manifest = _manifest(ctx, spec, version, commit, wanted, config or {})
    sha = manifest.commit
    digest = manifest.digest
    notes = redact_text(notes, ctx.secrets)
    # The chain's writer, imported when a release is recorded: status reads this module's
    # version order, and a process that only reads needs none of it (bench/tui_start.py).
    from shipdeck.core.storage import audit

    with ctx.db.write() as conn:
        audit.lock(conn)  # a racing creator of this version waits here, then sees its row
        existing = releases.find(conn, app, version)
        if existing is not None:
            if existing.digest == digest:
                return Created(_record(existing), created=False)
            raise ConflictError(
                f"release {app} {version} already exists with digest {existing.digest[:19]}; "
                f"this content has {digest[:19]} (versions are immutable: pick a new version)"
            )
        new_id, bind = releases.add(
            conn, app, version, sha, digest, manifest.encode(), notes, ctx.now(), ctx.actor.name
        )
        ctx.audit(
            conn, "release.created",
            {"version": version, "commit": sha, "digest": digest, "artifacts": wanted, "notes": notes},
            app=app, binds=[bind],
        )  # fmt: skip
        row = releases.get(conn, new_id)
    return Created(_record(row), created=True)


def list_releases(ctx: Context, app: str | None = None) -> list[ReleaseRecord]:
    if app is not None:
        app_config(ctx, app)
    with ctx.db.read() as conn:
        records = [_record(r) for r in releases.listed(conn, app)]
    # Within an app, highest version first: the top row is what "latest" means.
    return sorted(records, key=lambda r: (r.app, _Descending(version_order(r))))


def find_release(conn: Tx, app: str, version: str) -> ReleaseRecord | None:
    """The release as recorded, proven: a manifest that no longer hashes to its digest, or a row
    its audit event does not vouch for, is an integrity failure (exit 7), never shipped or shown."""
    row = releases.find(conn, app, version)
    if row is None:
        return None
    return _proven(row, releases.untrusted(conn, [row]).get(row.id))


def proven_releases(conn: Tx, ids: Iterable[int]) -> list[ReleaseRecord]:
    """The releases with these ids as records, each proven as `find_release` proves one (their
    events are read in one query); in the order the database returns them."""
    rows = releases.by_ids(conn, ids)
    bad = releases.untrusted(conn, rows)
    return [_proven(row, bad.get(row.id)) for row in rows]


def _proven(row: ReleaseRow, problem: Problem | None) -> ReleaseRecord:
    """`row` as a record, once its manifest, digest and audit binding agree."""
    rec = _record(row)
    if rec.manifest.digest != row.digest:
        raise IntegrityError(
            f"release {row.app} {row.version} (table release, id={row.id}, event "
            f"{row.audit_seq}): its manifest hashes to {rec.manifest.digest[:19]}, not its "
            f"recorded digest {row.digest[:19]} (altered)"
        )
    if problem is not None:
        raise IntegrityError(f"release {row.app} {row.version}: {problem.sentence}")
    return rec


def get_release(ctx: Context, app: str, version: str) -> ReleaseRecord:
    app_config(ctx, app)
    with ctx.db.read() as conn:
        rec = find_release(conn, app, version)
    if rec is None:
        raise NotFoundError(f"no release {app} {version} (see 'shipdeck release list {app}')")
    return rec


class _Versioned(Protocol):
    """A release row or record: what version order needs of it."""

    @property
    def id(self) -> int: ...

    @property
    def version(self) -> str: ...


def highest_rows(rows: Iterable[ReleaseVersion]) -> dict[str, ReleaseVersion]:
    """Per app, the release with the highest version (see core.domain.versions)."""
    best: dict[str, tuple[VersionOrder, ReleaseVersion]] = {}
    for row in rows:
        key, held = version_order(row), best.get(row.app)
        if held is None or held[0] < key:
            best[row.app] = key, row
    return {app: row for app, (_, row) in best.items()}


def version_order(row: _Versioned) -> VersionOrder:
    """A release row's or record's place in version order (its id breaks ties)."""
    return VersionOrder(row.version, row.id)


@dataclass(frozen=True)
class _Descending:
    key: VersionOrder

    def __lt__(self, other: _Descending) -> bool:
        return other.key < self.key


def latest_release(conn: Tx, app: str) -> ReleaseRecord | None:
    """The app's highest version, not its last recorded one."""
    best = highest_rows(releases.versions(conn, [app])).get(app)
    if best is None:
        return None
    return _record(releases.get(conn, best.id))


def _commit_dict(c: CommitInfo) -> dict[str, Any]:
    return {"sha": c.sha, "author": c.author, "date": c.date.isoformat(), "subject": c.subject}


def _commits(n: int) -> str:
    return f"{n} commit" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class ReleaseDiff:
    """Two releases of one app compared. `commits` are in `new` but not in `old`; `removed` are in
    `old` but not in `new` (what a downgrade or a switch to another branch takes away)."""

    app: str
    old: ReleaseRecord | None
    new: ReleaseRecord
    commits: list[CommitInfo]
    artifacts: list[ArtifactChange]
    config: list[ConfigChange]
    removed: list[CommitInfo] = field(default_factory=list)

    @property
    def downgrade(self) -> bool:
        return self.old is not None and is_downgrade(self.old.version, self.new.version)

    @property
    def headline(self) -> str:
        """The one-line summary both front ends show: 'downgrade: removes 2 commits', or
        '3 commit(s)' (and what it removes, when it also takes commits away)."""
        if self.downgrade:
            extra = f", adds {_commits(len(self.commits))}" if self.commits else ""
            return f"downgrade: removes {_commits(len(self.removed))}{extra}"
        extra = f", removes {_commits(len(self.removed))}" if self.removed else ""
        return f"{len(self.commits)} commit(s){extra}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "from": self.old.version if self.old else None,
            "to": self.new.version,
            "downgrade": self.downgrade,
            "summary": self.headline,
            "commits": [_commit_dict(c) for c in self.commits],
            "removed_commits": [_commit_dict(c) for c in self.removed],
            "artifacts": [a.as_dict() for a in self.artifacts],
            "config": [c.as_dict() for c in self.config],
        }


def diff_records(ctx: Context, old: ReleaseRecord | None, new: ReleaseRecord) -> ReleaseDiff:
    spec = app_config(ctx, new.app)
    repo = repo_path(ctx, spec)
    commits = ctx.git.commits_between(repo, old.commit if old else None, new.commit)
    removed = ctx.git.commits_between(repo, new.commit, old.commit) if old else []
    return ReleaseDiff(
        app=new.app,
        old=old,
        new=new,
        commits=commits,
        artifacts=artifact_changes(old.manifest.artifacts if old else (), new.manifest.artifacts),
        config=config_changes(old.manifest.config if old else {}, new.manifest.config),
        removed=removed,
    )


def diff_releases(ctx: Context, app: str, old_version: str, new_version: str) -> ReleaseDiff:
    return diff_records(ctx, get_release(ctx, app, old_version), get_release(ctx, app, new_version))
