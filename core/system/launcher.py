"""RunLauncher for real: `python -m shipdeck.core.runner` in a session of its own, its output
appended to the run's log, the runner token handed over through an inherited pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import shipdeck
from shipdeck.core.ports import RunnerLaunch, WaiterLaunch
from shipdeck.core.storage.files import make_dirs, open_file

TOKEN_FD_ENV = "SHIPDECK_RUNNER_TOKEN_FD"  # the number of the inherited pipe, not the token


def hand_over(token: str) -> int:
    """A pipe holding `token`, read end returned for the child to inherit (the write end is
    closed here, so the child reads to EOF). The token fits the pipe buffer."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, token.encode())
    finally:
        os.close(write_fd)
    return read_fd


@dataclass(frozen=True)
class SpawnedRunner:
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def _spawn(
    module: str,
    args: list[str],
    workspace: Path,
    log_path: Path,
    database_url: str,
    *,
    extra_env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> SpawnedRunner:
    """`python -m MODULE ARGS` in a session of its own (it outlives the command and the SSH
    connection), output appended to `log_path`. The database URL travels in the environment
    (never argv, which any local user can read); a daemon thread reaps it, so no zombie lingers."""
    make_dirs(log_path.parent)
    # The folder that holds the `shipdeck` package (a checkout, or site-packages): the child
    # imports what this process imported, and no folder of it lands on the path as top level.
    code_root = str(Path(shipdeck.__file__).absolute().parent.parent)
    env = {
        **os.environ,
        "SHIPDECK_DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(p for p in (code_root, os.environ.get("PYTHONPATH")) if p),
        **(extra_env or {}),
    }
    with os.fdopen(open_file(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, cwd=workspace, start_new_session=True,
            close_fds=True, shell=False, pass_fds=pass_fds,
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return SpawnedRunner(proc)


class DetachedLauncher:
    def launch(self, request: RunnerLaunch) -> SpawnedRunner:
        """The runner acts as the same person; its one-time token goes through a pipe."""
        token_fd = hand_over(request.token)
        args = [
            "--workspace", str(request.workspace), "--actor", request.actor, request.plan_id,
            str(request.epoch),
        ]  # fmt: skip
        try:
            return _spawn(
                "shipdeck.core.runner", args, request.workspace, request.log_path,
                request.database_url, extra_env={TOKEN_FD_ENV: str(token_fd)},
                pass_fds=(token_fd,),
            )  # fmt: skip
        finally:
            os.close(token_fd)

    def launch_waiter(self, request: WaiterLaunch) -> SpawnedRunner:
        args = ["--workspace", str(request.workspace), request.plan_id]
        return _spawn(
            "shipdeck.core.waiter", args, request.workspace, request.log_path,
            request.database_url,
        )  # fmt: skip
