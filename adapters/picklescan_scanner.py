"""Pickle-based weights scanned with picklescan: it disassembles the pickle opcodes (for a PyTorch
zip archive, those of its inner data.pkl) and lists the globals they import, so a file is judged
without ever being unpickled. Written against picklescan 1.0.5."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import BinaryIO

from shipdeck.core.ports import ScanOutcome

# picklescan logs each finding at WARNING; with no handler Python would print them on stderr,
# where the CLI's own lines go. The findings reach people through the manifest instead.
logging.getLogger("picklescan").addHandler(logging.NullHandler())
logging.getLogger("picklescan").propagate = False


class PickleScanner:
    def scan(self, path: str, data: BinaryIO) -> ScanOutcome:
        from picklescan.scanner import SafetyLevel, scan_bytes

        try:
            result = scan_bytes(data, path, PurePosixPath(path).suffix.lower() or None)
        except Exception as exc:  # a truncated or hostile archive: say so, never crash
            return ScanOutcome((), f"the scanner could not read it ({type(exc).__name__})")
        dangerous = tuple(
            sorted(
                {
                    f"{g.module}.{g.name}"
                    for g in result.globals
                    if g.safety == SafetyLevel.Dangerous
                }
            )
        )
        error = "the scanner could not parse it to the end" if result.scan_err else None
        return ScanOutcome(dangerous, error)
