"""What the kernel says about this process: the one source of "which OS user is this".

USER, LOGNAME and SSH_CLIENT are whatever the caller typed; the effective uid is not.
"""

from __future__ import annotations

import grp
import os
import pwd


def os_user() -> str:
    """The effective uid's login name (`uid-N` for a uid without a passwd entry, as in some
    containers: still the kernel's fact, never the environment's)."""
    return user_name(os.geteuid())


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid-{gid}"


def in_group(gid: int) -> bool:
    """Whether this process may act with the group's permissions."""
    return gid == os.getegid() or gid in os.getgroups()
