"""Ways to run the real `shipdeck` CLI from tests: in this process (tui.cli.run, the function the
console script calls, fast and with both streams captured) or as a separate process (when the
test needs a real exit, signals or a fresh interpreter)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from shipdeck.tui.cli import run
from tests.support.workspace import WorkspaceFixture

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def shipdeck(*args: str, env: Mapping[str, str] | None = None) -> Ran:
    """`shipdeck ARGS` in this process, with exactly `env` as the environment when given."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, dict(env) if env is not None else {}, clear=env is not None),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        code = run(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


def run_process(
    args: tuple[str, ...] | list[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`shipdeck ARGS` as a separate interpreter (`python -m shipdeck.tui.cli`), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "shipdeck.tui.cli", *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # never the test runner's terminal: no prompt may wait on it
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def shipdeck_process(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Ran:
    """`shipdeck ARGS` as a separate process through the console entry point."""
    done = run_process(
        args,
        {**(env if env is not None else os.environ), "PYTHONPATH": str(REPO_ROOT)},
        cwd or REPO_ROOT,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def cli(
    ws: WorkspaceFixture,
    *args: str,
    actor: str = "alice",
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real `shipdeck` CLI in a subprocess against this workspace."""
    return run_process(args, {**ws.env(actor), **(extra_env or {})}, ws.root, timeout)
