"""Starting shipdeck's own detached processes (the runner, the queue's waiter).

Both must outlive the command and the SSH session that started them (a new session, no
terminal), import exactly the shipdeck this process imported, reach the same database, and write
to a log in the workspace's state folder that no other user can read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import shipdeck
from shipdeck.core.services.context import Context
from shipdeck.core.storage.files import make_dirs, open_file


def spawn(
    ctx: Context,
    module: str,
    args: Sequence[str],
    log_path: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """`python -m MODULE ARGS` detached, its output appended to `log_path`; the database URL
    travels in the environment (never argv, which any local user can read)."""
    make_dirs(log_path.parent)
    # The folder that holds the `shipdeck` package (a checkout, or site-packages): the child
    # imports what this process imported, and no folder of it lands on the path as top level.
    code_root = str(Path(shipdeck.__file__).absolute().parent.parent)
    env = {
        **os.environ,
        "SHIPDECK_DATABASE_URL": ctx.db.url,
        "PYTHONPATH": os.pathsep.join(p for p in (code_root, os.environ.get("PYTHONPATH")) if p),
        **(extra_env or {}),
    }
    with os.fdopen(open_file(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, cwd=ctx.workspace, start_new_session=True,
            close_fds=True, shell=False, pass_fds=tuple(pass_fds),
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc
