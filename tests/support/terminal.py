"""Running the real CLI in this process with stdout on a pseudo-terminal of a given width, for
what only a terminal changes (table widths); the pipe case is the ordinary in-process runner."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios
import threading
import tty
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from shipdeck.tui.cli import run
from tests.support.cli import Ran


def shipdeck_on_terminal(*args: str, env: Mapping[str, str], columns: int) -> Ran:
    """`shipdeck ARGS` with stdout on a raw pty `columns` wide (COLUMNS unset), stderr captured."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    tty.setraw(slave)  # no "\n" -> "\r\n" translation: the test reads lines as written
    chunks: list[bytes] = []

    def drain() -> None:  # the pty buffer is small: read while the command writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the slave side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    err = io.StringIO()
    environ = {k: v for k, v in env.items() if k != "COLUMNS"}
    with (
        open(slave, "w", encoding="utf-8", closefd=True) as out,
        mock.patch.dict(os.environ, environ, clear=True),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        code = run(list(args))
        out.flush()
    reader.join(timeout=30)
    os.close(master)
    return Ran(code, b"".join(chunks).decode("utf-8"), err.getvalue())
