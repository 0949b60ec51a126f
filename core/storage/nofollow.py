"""Opening workspace files without following a symlink someone planted there.

A shared workspace is writable by its whole group, so any member can replace a log or state file
(or a folder above it) with a symlink to a file only the operator may read or write: the target's
log append would then write anywhere the operator can, and `task logs` would print anything they
can read. Inside the workspace every component below the root is opened with O_NOFOLLOW, one
folder at a time (openat), so neither the file nor any folder above it can be a link, and there
is no window between a check and the open. A path outside the workspace (a log configured as
/var/log/app.log) is the administrator's choice: only its last component is refused as a link.

Config files that shipdeck edits in place because the workspace names them (a LiteLLM gateway
config bind-mounted into a container) are another matter: see adapters/token_limits.py.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from shipdeck.core.errors import UnsafeFile


def _refused(path: str | Path, component: str | Path) -> UnsafeFile:
    what = "is" if component == path else f"is under {component}, which is"
    return UnsafeFile(
        f"{path}: refused: it {what} a symbolic link (or not a plain folder); shipdeck never "
        "follows links in the workspace: remove it and run the command again"
    )


def _below(path: str | Path, root: Path) -> tuple[str, ...] | None:
    """The components of `path` below `root`, judged on the names as written (the point is not
    to resolve links); None when `path` is not under `root`."""
    try:
        rel = Path(os.path.normpath(path)).relative_to(os.path.normpath(root))
    except ValueError:
        return None
    parts = rel.parts
    return parts if parts and ".." not in parts else None


def open_nofollow(
    path: str | Path, flags: int, mode: int = 0o600, *, root: Path | None = None
) -> int:
    """os.open(path, flags, mode) that follows no symlink: under `root`, at no component below
    it; elsewhere, not at the last one. Raises UnsafeFile (exit 4, naming the file) instead.
    A str path is taken as is (status reads thousands of target state files: no Path each)."""
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    parts = _below(path, root) if root is not None else None
    if root is None or parts is None:
        try:
            return os.open(path, flags, mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(path, path) from None
            raise
    here = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the root itself is trusted
    walked = Path(root)
    try:
        for name in parts[:-1]:
            walked /= name
            try:
                step = os.open(
                    name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here
                )
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused(path, walked) from None
                raise
            os.close(here)
            here = step
        try:
            return os.open(parts[-1], flags, mode, dir_fd=here)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(path, path) from None
            raise
    finally:
        os.close(here)
