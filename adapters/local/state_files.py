"""State files of local targets and their front proxies: written whole or not at all, read
without following a planted symlink.

Kept apart from the process supervisor so that a reader of one file (status's live colour,
adapters/local/backend.py) imports only this: the supervisor brings subprocess, signals and
http.client, ~8 ms of the TUI's first frame (bench/tui_start.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from shipdeck.core.errors import AdapterError, UnsafeFile
from shipdeck.core.storage.files import open_file
from shipdeck.core.storage.nofollow import open_nofollow


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Replace `path` so readers see either the old or the new content, never a torn file.

    With `mode` the new file gets exactly those permission bits and is private until then: a file
    that holds API keys is never readable by others, not even for a moment.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = open_file(tmp, os.O_WRONLY | os.O_TRUNC)  # the workspace's mode, whatever the umask
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            if mode is not None:
                os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_state(path: str | Path, label: str) -> dict[str, Any]:
    """A JSON object we wrote with atomic_write_text: {} before the first write, a one-line
    AdapterError when it is unreadable (a torn or hand-edited file must stop the target). A
    symlink planted at the file is refused the same way, never read through: the live color and
    weights it holds decide where traffic goes, and status shows the cell as unknown."""
    try:
        with open(open_nofollow(path, os.O_RDONLY), encoding="utf-8") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        return {}
    except UnsafeFile as exc:
        raise AdapterError(f"{label}: {exc.message}") from None
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{label}: unreadable state file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise AdapterError(f"{label}: unreadable state file {path}: not a JSON object")
    return doc
