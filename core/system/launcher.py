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
from shipdeck.core.ports import RunnerLaunch
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


class DetachedLauncher:
    def launch(self, request: RunnerLaunch) -> SpawnedRunner:
        """The runner inherits the database URL through the environment (never argv) and acts
        as the same person; it is reaped by a daemon thread, so it never lingers as a zombie."""
        make_dirs(request.log_path.parent)
        # The folder that holds the `shipdeck` package (a checkout, or site-packages): the runner
        # imports what this process imported, and no folder of it lands on the path as top level.
        code_root = str(Path(shipdeck.__file__).absolute().parent.parent)
        token_fd = hand_over(request.token)
        env = {
            **os.environ,
            "SHIPDECK_DATABASE_URL": request.database_url,
            "PYTHONPATH": os.pathsep.join(
                p for p in (code_root, os.environ.get("PYTHONPATH")) if p
            ),
            TOKEN_FD_ENV: str(token_fd),
        }
        argv = [
            sys.executable, "-m", "shipdeck.core.runner", "--workspace", str(request.workspace),
            "--actor", request.actor, request.plan_id, str(request.epoch),
        ]  # fmt: skip
        try:
            with os.fdopen(open_file(request.log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    cwd=request.workspace, start_new_session=True, close_fds=True, shell=False,
                    pass_fds=(token_fd,),
                )  # fmt: skip
        finally:
            os.close(token_fd)
        threading.Thread(target=proc.wait, name=f"reap-{request.plan_id}", daemon=True).start()
        return SpawnedRunner(proc)
