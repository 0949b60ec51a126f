"""Workspace administration: the schema, a shared set-up, and the check of it.

These commands run where a Context may not exist yet (no schema, no workspace), so they admit the
caller with the same `refusal` rule every service uses; where the schema exists, the refusal and
the change are audited like any other.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipdeck.core.domain.config import PERMISSIONS
from shipdeck.core.errors import PermissionDenied, UsageError
from shipdeck.core.kernel import group_name, in_group, os_user, user_name
from shipdeck.core.services.context import Actor, Context, refusal, resolve_actor
from shipdeck.core.storage.db import Database
from shipdeck.core.storage.files import (
    PRIVATE_FILE,
    SHARED_DIR,
    SHARED_FILE,
    from_os_error,
    is_shared,
    make_dirs,
)
from shipdeck.core.storage.migrations import HEAD_REVISION
from shipdeck.core.storage.nofollow import open_nofollow
from shipdeck.core.workspace import CONFIG_NAME, STATE_DIR, Workspace, load_config

if TYPE_CHECKING:
    from shipdeck.core.storage.pg_roles import RoleSetup

ADMIN = "workspace.admin"


@dataclass(frozen=True)
class Upgraded:
    database: str
    before: str | None
    after: str | None


def _actor(workspace: Workspace, db: Database | None) -> Actor:
    """Who asks, as `resolve_actor` decides it (asking PostgreSQL where identity comes from it)."""
    if workspace.config.identity.source != "database":
        return resolve_actor(workspace.config)
    own = db or Database(workspace.database_url())
    try:
        return resolve_actor(workspace.config, session_user=own.session_user())
    finally:
        if db is None:
            own.dispose()


def _anyone() -> Actor:
    """Where there is no policy yet (a fresh folder), anyone may act, as in a workspace without
    roles; only the session's read-only flag can still refuse."""
    me = os_user()
    return Actor(me, me, None, (), frozenset(PERMISSIONS))


def permission_denied(exc: PermissionError) -> PermissionDenied:
    """A PermissionError from anywhere, as the sentence naming the file, the user and the fix
    (for the front ends' last-resort handler, which never reaches into storage itself)."""
    return from_os_error(exc)


def _admit(actor: Actor, read_only: bool) -> None:
    why = refusal(actor, read_only, ADMIN)
    if why is not None:
        raise PermissionDenied(f"not permitted: {why}")


def upgrade_database(
    workspace: Workspace,
    *,
    read_only: bool,
    context: Callable[[], Context],
    announce: Callable[[str], None],
) -> Upgraded:
    """Apply migrations: the only way a schema (or a SQLite file) comes to exist. It says which
    database it is about to create first, so a forgotten SHIPDECK_DATABASE_URL shows up as a
    surprising path instead of a quiet second state."""
    db = Database(workspace.database_url())
    try:
        before = db.schema_revision()
        if before == HEAD_REVISION:
            ctx = context()
            ctx.require(ADMIN)
            return Upgraded(db.display_url, before, before)
        _admit(_actor(workspace, db), read_only)
        if before is None:
            what = "a new SQLite database" if not db.exists else "the shipdeck schema"
            announce(f"creating {what} in {db.display_url}")
        db.upgrade()
        after = db.schema_revision()
    finally:
        db.dispose()
    _record_upgrade(context(), before, after)
    return Upgraded(db.display_url, before, after)


def bring_schema_up(ctx: Context, read_only: bool) -> None:
    """Where a front end opens on a schema behind this code (the TUI does): upgraded, and
    audited as `db upgrade` is, for those who may upgrade; named as behind, with the fix, for
    the others (SchemaBehindError, exit 4)."""
    before = ctx.db.schema_revision()
    if before == HEAD_REVISION:
        return
    if refusal(ctx.actor, read_only, ADMIN) is not None:
        ctx.db.check_schema()
    ctx.db.upgrade()
    _record_upgrade(ctx, before, ctx.db.schema_revision())


def _record_upgrade(ctx: Context, before: str | None, after: str | None) -> None:
    with ctx.change("db.upgraded", {"from": before, "to": after}):
        pass


# --- init ----------------------------------------------------------------------------------------


def init_workspace(
    directory: Path, starter: str, *, shared_group: str | None, read_only: bool
) -> list[str]:
    """Write the starter shipdeck.toml (a new workspace), and/or set the workspace up to be
    shared by a Unix group. Over an existing workspace only --shared changes anything, and it
    needs the workspace's admin permission. Returns what was done, one line each."""
    config_path = directory / CONFIG_NAME
    exists = os.path.lexists(config_path)  # a link (even a dangling one) is never written through
    if exists and shared_group is None:
        if read_only:
            _admit(_anyone(), read_only)
        raise UsageError(f"{config_path}: already exists (not overwritten)")
    if exists:
        _admit(_actor(Workspace(directory.resolve(), load_config(config_path)), None), read_only)
    else:
        _admit(_anyone(), read_only)
    done: list[str] = []
    if not exists:
        make_dirs(directory)
        # Created here or not at all (O_EXCL: no file or link raced in), private until shared.
        fd = open_nofollow(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(starter)
        done.append(f"wrote {config_path}")
    if shared_group is not None:
        done += share(directory, shared_group)
    return done


def share(root: Path, group: str) -> list[str]:
    """The supported shared layout: the group owns the workspace's state, .shipdeck/ is setgid
    2770 (new files inherit the group), state files are 0660, shipdeck.toml is group-readable."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise UsageError(
            f"--shared {group}: no such group (create it with 'groupadd {group}')"
        ) from None
    user = os_user()
    if os.geteuid() != 0 and not in_group(gid):
        raise PermissionDenied(
            f"not permitted: {user} is not in group {group} (usermod -aG {group} {user}, then "
            "log in again)"
        )
    state = root / STATE_DIR
    make_dirs(state)
    os.chown(root, -1, gid)
    os.chmod(root, (root.stat().st_mode & 0o7777) | 0o050)
    fd = open_nofollow(root / CONFIG_NAME, os.O_RDONLY)  # the file itself, never a link's target
    try:
        os.fchown(fd, -1, gid)
        os.fchmod(fd, (os.fstat(fd).st_mode & 0o7777 & ~0o007) | 0o040)  # group reads, others not
    finally:
        os.close(fd)
    fixed = 0
    for path in [state, *_tree(state)]:
        os.chown(path, -1, gid, follow_symlinks=False)
        os.chmod(path, SHARED_DIR if path.is_dir() else SHARED_FILE)
        fixed += 1
    return [f"shared {root} with group {group}: {state} is setgid 2770, {fixed} paths set"]


def _tree(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in (*dirnames, *filenames):
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path


# --- doctor --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: str
    mode: str
    owner: str
    group: str
    problem: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return dict(vars(self))


def doctor(workspace: Workspace, *, fix: bool = False, read_only: bool = False) -> list[Finding]:
    """What stops the people sharing this workspace: modes, groups, owners, each with its fix.
    With `fix` (the admin permission), this user repairs what it owns (root: everything); the
    rest stays listed."""
    if fix:
        _admit(_actor(workspace, None), read_only)
    state = workspace.root / STATE_DIR
    if not state.exists():
        return []
    if not is_shared(state):
        st = state.stat()
        return [
            _finding(
                state,
                st,
                "not shared (no setgid bit): only its owner can use it",
                "shipdeck init --shared GROUP",
            )
        ] + [f for p in _tree(state) if (f := _world(p, fix)) is not None]
    gid = state.stat().st_gid
    found: list[Finding] = []
    for path in [state, *_tree(state)]:
        problem = _shared_problem(path, gid)
        if problem is None:
            continue
        st = path.lstat()
        if fix and (os.geteuid() == 0 or st.st_uid == os.geteuid()):
            os.chown(path, -1, gid, follow_symlinks=False)
            os.chmod(path, SHARED_DIR if path.is_dir() else SHARED_FILE)
            continue
        found.append(_finding(path, st, problem, _fix_for(path, st, gid)))
    if not in_group(gid) and os.geteuid() != 0:
        st = state.stat()
        user, group = os_user(), group_name(gid)
        found.append(_finding(state, st, f"{user} is not in group {group}",
                              f"usermod -aG {group} {user}, then log in again"))  # fmt: skip
    return found


def _shared_problem(path: Path, gid: int) -> str | None:
    st = path.lstat()
    mode = st.st_mode
    if st.st_gid != gid:
        return f"group is {group_name(st.st_gid)}, not {group_name(gid)}"
    if stat.S_ISDIR(mode):
        if mode & 0o070 != 0o070 or not mode & stat.S_ISGID:
            return "folder is not group-writable and setgid (2770)"
    elif mode & 0o060 != 0o060:
        return "not group read/write (0660)"
    if mode & 0o002:
        return "world-writable"
    if mode & 0o004 and not stat.S_ISDIR(mode):
        return "world-readable state"
    return None


def _world(path: Path, fix: bool) -> Finding | None:
    st = path.lstat()
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o006:
        return None
    if fix and st.st_uid == os.geteuid():
        os.chmod(path, st.st_mode & 0o7770)
        return None
    return _finding(path, st, "world-readable or -writable state", f"chmod o-rw {path}")


def _fix_for(path: Path, st: os.stat_result, gid: int) -> str:
    mode = "2770" if stat.S_ISDIR(st.st_mode) else "0660"
    return (
        f"{user_name(st.st_uid)} (or root) runs 'chgrp {group_name(gid)} {path} && chmod {mode} "
        f"{path}' (or 'shipdeck doctor --fix')"
    )


def _finding(path: Path, st: os.stat_result, problem: str, fix: str) -> Finding:
    return Finding(
        str(path), stat.filemode(st.st_mode), user_name(st.st_uid), group_name(st.st_gid),
        problem, fix,
    )  # fmt: skip


# --- PostgreSQL roles ------------------------------------------------------------------------------


def database_roles(
    ctx: Context, persons: tuple[str, ...], *, owner: str = "shipdeck_owner",
    people: str = "shipdeck_people",
) -> RoleSetup:  # fmt: skip
    """Set up (or extend) the owner role, the people role and one login role per person, audited
    in the same transaction as the DDL. Adding a person later is this command again with their
    name; their shipdeck.toml roles name the same login."""
    ctx.require(ADMIN)
    if ctx.db.is_sqlite:
        raise UsageError(f"db roles: needs PostgreSQL; this workspace uses {ctx.db.display_url}")
    from shipdeck.core.storage.pg_roles import role_name, setup_roles  # not on every start

    names = (
        role_name(owner, "--owner"),
        role_name(people, "--people"),
        tuple(role_name(p, "person") for p in persons),
    )
    with ctx.change("db.roles", {"owner": owner, "people": people, "persons": list(persons)}) as (
        conn,
        body,
    ):
        done = setup_roles(conn, *names)
        body["schema"] = done.schema
    return done
