"""Audit checkpoints in a local file, one JSON line per checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

from shipdeck.core.errors import UsageError
from shipdeck.core.storage.files import make_dirs, open_file


class FileCheckpoints:
    def __init__(self, location: str) -> None:
        self.location = location
        self.path = Path(location)

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise UsageError(f"checkpoints {self.location}: cannot read ({exc.strerror})") from exc

    def append(self, line: str) -> None:
        try:
            make_dirs(self.path.parent)
            with os.fdopen(open_file(self.path, os.O_WRONLY | os.O_APPEND), "a") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise UsageError(f"checkpoints {self.location}: cannot write ({exc.strerror})") from exc
