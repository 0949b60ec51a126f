"""Model and data directories on local or shared storage (`file://`) as release artifacts.

Teams that keep models on an NFS share or a mounted bucket can pin them like a Hub repo: `resolve`
reads every file under the directory, and the release records each file's path, size and SHA-256
plus a digest over that list, so a release diff shows which files changed and by how much, and a
directory that changed after the release no longer matches its pin. It needs no network, which is
also what lets the demo carry real model artifacts.

Reading is confined to the directory: a symlink that resolves outside it, a symlinked
subdirectory (not followed, so it could hide files) or a special file (a FIFO would block the
read) is refused, and so is a URI with a NUL byte. Files are opened without following links and
checked after opening, so a file swapped for a link between listing and reading is refused too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from urllib.parse import parse_qs

from shipdeck.core.domain.artifact_diff import format_size
from shipdeck.core.domain.canonical import digest_of
from shipdeck.core.errors import AdapterError, UnsafeFile
from shipdeck.core.ports import ArtifactFile, ResolvedArtifact
from shipdeck.core.storage.nofollow import open_nofollow

_PREFIX = "file://"
_CHUNK = 1 << 20


class FileSource:
    """`file:///abs/dir`, or `file://rel/dir` relative to the workspace; a pinned URI carries
    `?sha256=<digest>` and resolves only while the directory still has exactly that content."""

    scheme = "file"

    def __init__(self, base: Path) -> None:
        self._base = base

    # --- port ---------------------------------------------------------------------------------

    def resolve(self, name: str, uri: str) -> ResolvedArtifact:
        path, pinned = self._parse(name, uri)
        files = _scan(name, path)
        digest = digest_of([[f.path, f.size, f.sha256] for f in files])
        if pinned is not None and pinned != digest:
            raise AdapterError(
                f"file source: artifact {name}: {path} no longer matches its pin "
                f"({pinned[:19]}…, now {digest[:19]}…)"
            )
        location = uri.split("?", 1)[0]
        return ResolvedArtifact(
            name=name,
            uri=uri,
            resolved=f"{location}?sha256={digest}",
            digest=digest,
            files=files,
            meta={"path": str(path)},
        )

    def describe(self, artifact: ResolvedArtifact, lines: int = 10) -> list[str]:
        """A count and total, then the largest files: what a reviewer looks at first."""
        head = [f"{len(artifact.files)} files, {format_size(artifact.total_size())}"]
        biggest = sorted(artifact.files, key=lambda f: (-f.size, f.path))[: max(lines - 1, 0)]
        return head + [f"{f.path}  {format_size(f.size)}  {(f.sha256 or '')[:12]}" for f in biggest]

    def promote(self, artifact: ResolvedArtifact, destination: str) -> ResolvedArtifact:
        """Copy exactly the pinned files to `destination` (a file:// directory that does not
        exist yet), verified against their hashes before the copy is renamed into place."""
        source = self.resolve(artifact.name, artifact.resolved)  # still the pinned content
        target, _ = self._parse(artifact.name, destination)
        if target.exists():
            raise AdapterError(
                f"file source: artifact {artifact.name}: {target} already exists (not replaced)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            origin = Path(source.meta["path"])
            for f in source.files:
                copy = staging / f.path
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(origin / f.path if origin.is_dir() else origin, copy)
            copied = _scan(artifact.name, staging)
            if [(f.path, f.sha256) for f in copied] != [(f.path, f.sha256) for f in source.files]:
                raise AdapterError(
                    f"file source: artifact {artifact.name}: copy to {target} did not verify"
                )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.resolve(artifact.name, destination)

    # --- helpers ------------------------------------------------------------------------------

    def _parse(self, name: str, uri: str) -> tuple[Path, str | None]:
        if "\x00" in uri:
            raise UnsafeFile(f"artifact {name}: file:// path contains a NUL byte")
        if not uri.startswith(_PREFIX) or len(uri) == len(_PREFIX):
            raise AdapterError(f"file source: artifact {name}: {uri!r} is not a file:// path")
        # The path is taken as written (no host part, no percent-decoding): what the team's
        # share is called on disk, relative to the workspace unless absolute.
        raw, _, query = uri[len(_PREFIX) :].partition("?")
        pinned = parse_qs(query).get("sha256", [None])[0]
        path = Path(raw)
        return (path if path.is_absolute() else self._base / path), pinned


def _scan(name: str, root: Path) -> tuple[ArtifactFile, ...]:
    """Every regular file under `root` (or `root` itself), sorted by path, with size and hash."""
    try:
        top = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise AdapterError(f"file source: artifact {name}: {root} does not exist") from None
    if top.is_file():
        return (_hashed(name, top, top.name, top.parent),)
    if not top.is_dir():
        raise UnsafeFile(f"artifact {name}: {root} is neither a directory nor a file")
    found: list[ArtifactFile] = []

    def unreadable(exc: OSError) -> None:  # os.walk would skip the folder: a silent hole
        raise AdapterError(f"file source: artifact {name}: {exc.filename}: {exc.strerror}")

    for folder, dirs, names in os.walk(top, onerror=unreadable, followlinks=False):
        here = Path(folder)
        for d in dirs:
            if (here / d).is_symlink():
                rel = (here / d).relative_to(top).as_posix()
                raise UnsafeFile(
                    f"artifact {name}: {rel} in {root} is a symlinked directory (not followed)"
                )
        for n in names:
            found.append(_hashed(name, here / n, (here / n).relative_to(top).as_posix(), top))
    if not found:
        raise AdapterError(f"file source: artifact {name}: {root} holds no files")
    return tuple(sorted(found, key=lambda f: f.path))


def _hashed(name: str, path: Path, rel: str, top: Path) -> ArtifactFile:
    real = path
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(top):
            raise UnsafeFile(
                f"artifact {name}: {rel} is a symlink out of {top} (to {real}): refused"
            )
    try:  # no link followed below the directory: one swapped in since the listing is refused
        fd = open_nofollow(real, os.O_RDONLY | os.O_NONBLOCK, root=top)
    except UnsafeFile as exc:
        raise UnsafeFile(f"artifact {name}: {exc.message}") from None
    except OSError as exc:
        raise AdapterError(f"file source: artifact {name}: {rel}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"artifact {name}: {rel} is not a regular file: refused")
        digest = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return ArtifactFile(path=rel, size=info.st_size, sha256=digest.hexdigest())
