"""Fencing epochs for targets: a runner that stalled past its lease must not undo a newer one.

Every mutating Target call carries the epoch of the lease it runs under. A target remembers the
highest epoch it has seen and refuses anything older. Targets on this machine keep it in a file
(`EpochFence`); a target whose state lives elsewhere (an ALB's tags) keeps it there and applies
the same rule through `check_epoch`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from shipdeck.adapters.local.processes import file_lock
from shipdeck.adapters.local.state_files import atomic_write_text
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import StaleEpoch

LOCK_TIMEOUT = 60.0


def check_epoch(label: str, epoch: int, seen: int | None) -> bool:
    """Raise StaleEpoch when `epoch` is older than `seen`; True when `epoch` is newer and must be
    recorded."""
    if seen is not None and epoch < seen:
        raise StaleEpoch(f"{label}: epoch {epoch} is older than {seen} already seen")
    return seen is None or epoch > seen


class EpochFence:
    """The highest fencing epoch a target has seen, in a file every process on this machine shares.

    The check and the action happen under one lock: otherwise a stalled runner could pass the
    check, lose the race to a newer runner's switch, and then undo it.
    """

    def __init__(self, state_dir: Path | str, label: str) -> None:
        self.path = Path(state_dir) / "epoch"
        self.lock_path = Path(state_dir) / "target.lock"
        self.label = label

    def seen(self) -> int | None:
        try:
            return int(self.path.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{self.label}: unreadable epoch file {self.path}: {exc}") from None

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The target's lock without an epoch, for work outside a release run (teardown)."""
        return file_lock(self.lock_path, LOCK_TIMEOUT, self.label)

    @contextlib.contextmanager
    def hold(self, epoch: int) -> Iterator[None]:
        """Refuse an epoch older than the highest seen, record a newer one, and keep the target
        locked while the caller acts."""
        with self.locked():
            if check_epoch(self.label, epoch, self.seen()):
                atomic_write_text(self.path, f"{epoch}\n")
            yield
