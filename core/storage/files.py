"""Files shipdeck creates: the one mode policy, and the one sentence for a permission problem.

A workspace is shared on one host through a Unix group and a setgid `.shipdeck/` (see
docs/teams.md): inside a setgid folder every file shipdeck creates is 0660 and every folder 2770,
so the whole group can write and the group carries down; elsewhere files are 0600 and folders
0700. Either way nothing is world-writable and state is never world-readable. The mode is set
with fchmod after creation, so a user's umask cannot decide it (SQLite, for one, creates its
database 0644 whatever the umask; its WAL and SHM files then copy the database's mode).

Every caller that creates a workspace file (database, locks, state, pid, logs, token-limit
files) goes through `open_file`/`make_dirs`, and every PermissionError becomes
`permission_problem`: the file, the user and the fix, exit 4.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shipdeck.core.errors import PermissionDenied
from shipdeck.core.kernel import group_name, in_group, os_user, user_name
from shipdeck.core.storage.nofollow import open_nofollow

SHARED_FILE = 0o660
PRIVATE_FILE = 0o600
SHARED_DIR = 0o2770
PRIVATE_DIR = 0o700


def is_shared(folder: Path) -> bool:
    """A setgid folder is a shared one: files created in it belong to its group."""
    try:
        return bool(folder.stat().st_mode & stat.S_ISGID)
    except OSError:
        return False


def file_mode(folder: Path) -> int:
    return SHARED_FILE if is_shared(folder) else PRIVATE_FILE


def make_dirs(path: Path) -> None:
    """mkdir -p, each new folder 2770 inside a shared one (setgid carries down) else 0700."""
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(folder, SHARED_DIR if is_shared(folder.parent) else PRIVATE_DIR)


def open_file(path: Path, flags: int, *, root: Path | None = None) -> int:
    """os.open with O_CREAT, never through a symlink (below `root`, at no component: see
    core.storage.nofollow); a file this call creates gets the folder's mode (above) whatever the
    umask. An existing file keeps its mode."""
    try:
        fd = open_nofollow(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE, root=root)
    except FileExistsError:
        return open_nofollow(path, flags, root=root)
    try:
        os.fchmod(fd, file_mode(path.parent))
    except BaseException:
        os.close(fd)
        raise
    return fd


def touch(path: Path) -> None:
    """Create `path` (and its folders) with the workspace's modes, if it is not there yet."""
    make_dirs(path.parent)
    os.close(open_file(path, os.O_RDONLY))


def first_denied(paths: list[Path], write: bool) -> Path | None:
    """The first of `paths` this process cannot use; a file not there yet is judged by whether
    its folder lets this process create it."""
    for p in paths:
        target, creating = p, False
        while not target.exists() and target.parent != target:
            target, creating = target.parent, True
        if target.is_dir():
            need = os.X_OK | (os.W_OK if write or creating else 0) | (0 if creating else os.R_OK)
        else:
            need = os.R_OK | (os.W_OK if write else 0)
        if not os.access(target, need):
            return target
    return None


def permission_problem(path: Path, *, write: bool = True) -> PermissionDenied:
    """One sentence: who cannot do what to which file, how it is set, and who fixes it how."""
    user = os_user()
    try:
        st = path.stat()
    except OSError:
        return PermissionDenied(
            f"not permitted: {user} cannot {'write' if write else 'read'} {path}; fix: check the "
            f"folders above it are searchable by {user}"
        )
    owner, group = user_name(st.st_uid), group_name(st.st_gid)
    is_dir = stat.S_ISDIR(st.st_mode)
    verb = ("write in" if is_dir else "write") if write else ("open" if is_dir else "read")
    bits = ("rwx" if is_dir else "rw") if write else ("rx" if is_dir else "r")
    if st.st_uid != os.geteuid() and not in_group(st.st_gid):
        fix = f"add {user} to group {group} (usermod -aG {group} {user}, then log in again)"
    else:
        fix = f"{owner} runs 'chmod g+{bits} {path}' (or 'shipdeck doctor --fix')"
    return PermissionDenied(
        f"not permitted: {user} cannot {verb} {path} (owner {owner}, group {group}, mode "
        f"{stat.filemode(st.st_mode)}); fix: {fix}"
    )


def reachable(path: Path) -> Path:
    """The nearest of `path` and its folders that this process can stat; a folder above it it
    may not search is where a permission problem lies."""
    here = path
    while here.parent != here:
        try:
            here.stat()
            return here
        except OSError:
            here = here.parent
    return here


def exists(path: Path) -> bool:
    """Path.exists, except that a folder this user may not search is a permission problem
    naming it, not a crash and not "no such file"."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except PermissionError:
        raise permission_problem(reachable(path), write=False) from None
    return True


def from_os_error(exc: PermissionError) -> PermissionDenied:
    """A PermissionError raised anywhere, as the sentence above about the file it names."""
    name = exc.filename if isinstance(exc.filename, str | bytes) else None
    if name is None:
        return PermissionDenied(f"not permitted: {os_user()}: {exc.strerror or exc}")
    path = Path(os.fsdecode(name))
    target = reachable(path)
    return permission_problem(target, write=target == path)
