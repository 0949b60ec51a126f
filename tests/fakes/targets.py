"""A Target port that records what it was asked to do and touches nothing.

For tests that must prove an effect was *not* attempted (the audit intent could not be recorded):
a real target would have to be inspected afterwards, this one simply keeps the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipdeck.core.ports import Color, Health, ReleaseSpec, Target


@dataclass
class RecordingTarget:
    live: Color | None = "blue"
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def live_color(self) -> Color | None:
        return self.live

    def staged_version(self, color: Color) -> str | None:
        return None

    def endpoint(self) -> str | None:
        return None

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        self.calls.append(("stage", (color, release.version, epoch)))

    def health(self, color: Color) -> Health:
        return Health(True, "fake target: healthy")

    def switch(self, color: Color, epoch: int) -> None:
        self.calls.append(("switch", (color, epoch)))

    def stop_idle(self, color: Color, epoch: int) -> None:
        self.calls.append(("stop_idle", (color, epoch)))

    def restart(self, epoch: int) -> None:
        self.calls.append(("restart", epoch))

    def close(self) -> None:
        pass

    def factory(self, app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Target:
        """Use as Context.targets: every app and environment gets this one target."""
        return self
