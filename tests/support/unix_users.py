"""Real Unix users and a group for the shared-host tests, and running shipdeck as one of them.

Needs root (CI runs as root): users and the group get unique `sdk<hex>_` names per test and are
removed afterwards. Not root: the tests skip saying so, except under CI=true, where they fail.
shipdeck runs as each user through `runuser -u NAME --` with the system python3 and this venv's
site-packages on PYTHONPATH (the venv's own interpreter lives under /root, which they cannot
read), from a folder under /tmp they can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT, Ran

SYSTEM_PYTHON = "/usr/bin/python3"


def require_root() -> None:
    why = None
    if os.geteuid() != 0:
        why = "real Unix user tests need root (useradd, runuser); CI runs them as root"
    elif not shutil.which("runuser") or not shutil.which("useradd"):
        why = "real Unix user tests need runuser and useradd"
    elif not Path(SYSTEM_PYTHON).exists():
        why = f"real Unix user tests need {SYSTEM_PYTHON} (the venv's interpreter is root's)"
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Host:
    """A group, users named `<prefix>_<short>`, and a scratch folder all of them can read."""

    prefix: str
    group: str
    scratch: Path
    users: dict[str, str] = field(default_factory=dict)  # short name -> login
    env: dict[str, str] = field(default_factory=dict)  # added to every command's environment

    def add_user(self, short: str, *, in_group: bool = True) -> str:
        login = f"{self.prefix}_{short}"
        home = self.scratch / "home" / short
        subprocess.run(
            ["useradd", "-M", "-d", str(home), "-s", "/usr/sbin/nologin",
             *(["-G", self.group] if in_group else []), login],
            check=True, capture_output=True,
        )  # fmt: skip
        self.users[short] = login
        home.mkdir(parents=True)
        shutil.chown(home, login, login)
        home.chmod(0o700)
        return login

    def __getitem__(self, short: str) -> str:
        return self.users[short]

    def shipdeck(self, short: str, *args: str, cwd: Path | None = None, **env: str) -> Ran:
        """`shipdeck ARGS` as that user, in a clean environment plus `env`."""
        return self.python(short, "-m", "shipdeck", *args, cwd=cwd, **env)

    def python(self, short: str, *args: str, cwd: Path | None = None, **env: str) -> Ran:
        """`python3 ARGS` as that user, seeing this checkout and its venv's packages."""
        login = self.users[short]
        site = sysconfig.get_paths()["purelib"]
        environ = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.scratch / "home" / short),
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{site}",
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
            **self.env,
            **env,
        }
        done = subprocess.run(
            ["runuser", "-u", login, "--", "env", "-i", *(f"{k}={v}" for k, v in environ.items()),
             SYSTEM_PYTHON, *args],
            cwd=cwd or self.scratch, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        return Ran(done.returncode, done.stdout, done.stderr)


@contextmanager
def unix_host() -> Iterator[Host]:
    require_root()
    prefix = f"sdk{uuid.uuid4().hex[:6]}"
    group = f"{prefix}_team"
    scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp"))
    scratch.chmod(0o755)
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    host = Host(prefix, group, scratch)
    try:
        yield host
    finally:
        for login in host.users.values():
            subprocess.run(["userdel", login], capture_output=True, check=False)
        subprocess.run(["groupdel", group], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def git_trusting_everyone() -> Mapping[str, str]:
    """Command-line scope git config (which git honours for safe.directory): the repositories
    belong to the workspace's owner, and the other users read them."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
    }


__all__ = ["Host", "Ran", "git_trusting_everyone", "require_root", "unix_host"]
