"""What changed between two resolved versions of one artifact, in files and bytes.

Pure functions over the port dataclasses, so every source (hf, s3) is compared the same way and a
release diff can say "model changed: 3 files, +1.2 GB" without asking the source again.
"""

from __future__ import annotations

from shipdeck.core.ports import ArtifactDiff, ArtifactFile, ResolvedArtifact

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def diff_artifacts(old: ResolvedArtifact | None, new: ResolvedArtifact | None) -> ArtifactDiff:
    """Compare files by path; a file changed when its size or content hash differs.

    `old` is None when the artifact is new in this release, `new` is None when it was dropped.
    Two files whose hash is unknown on both sides count as equal when their sizes match: the
    source could not tell more, and flagging every such file would drown real changes.
    """
    either = new if new is not None else old
    if either is None:
        raise ValueError("diff_artifacts needs at least one artifact")
    before = _by_path(old)
    after = _by_path(new)
    added = tuple(sorted(after.keys() - before.keys()))
    removed = tuple(sorted(before.keys() - after.keys()))
    changed = tuple(
        sorted(
            path
            for path in before.keys() & after.keys()
            if (before[path].size, before[path].sha256) != (after[path].size, after[path].sha256)
        )
    )
    old_size = old.total_size() if old is not None else 0
    new_size = new.total_size() if new is not None else 0
    return ArtifactDiff(
        name=either.name,
        added=added,
        removed=removed,
        changed=changed,
        size_delta=new_size - old_size,
    )


def _by_path(artifact: ResolvedArtifact | None) -> dict[str, ArtifactFile]:
    return {f.path: f for f in artifact.files} if artifact is not None else {}


def summarize(diff: ArtifactDiff) -> str:
    """One line for status and release diffs: "model changed: 3 files (1 added, ...), +1.2 GB"."""
    if diff.changed_count == 0 and diff.size_delta == 0:
        return f"{diff.name} unchanged"
    parts = [
        f"{len(files)} {label}"
        for files, label in (
            (diff.added, "added"),
            (diff.removed, "removed"),
            (diff.changed, "changed"),
        )
        if files
    ]
    count = diff.changed_count
    noun = "file" if count == 1 else "files"
    detail = f" ({', '.join(parts)})" if parts else ""
    size = "same size" if diff.size_delta == 0 else signed_size(diff.size_delta)
    return f"{diff.name} changed: {count} {noun}{detail}, {size}"


def format_size(size: int) -> str:
    """Decimal units, as the Hub and the S3 console show sizes, so figures match what users see."""
    value = float(abs(size))
    unit = _UNITS[0]
    for unit in _UNITS:
        if value < 999.5 or unit == _UNITS[-1]:
            break
        value /= 1000
    if unit == "B":
        text = f"{int(value)} B"
    else:
        text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
        text = f"{text.removesuffix('.0')} {unit}"
    return f"-{text}" if size < 0 else text


def signed_size(delta: int) -> str:
    return format_size(delta) if delta < 0 else f"+{format_size(delta)}"
