"""The key bar every screen ends with: Textual's Footer, rebuilt only when its keys change.

Textual's Footer removes and mounts all of its keys again each time the screen says its bindings
may have changed: on focus, on the screen being shown, and after its own rebuild moved focus. On
the way to the dashboard's first frame that was three rebuilds of the same keys, ~8 ms each
(bench/tui_start.py). This one compares what it would show with what it shows and rebuilds
only when they differ; a key that becomes refused or allowed (check_action) is a difference.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class KeysFooter(Footer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[object, ...] | None = None

    def _wanted(self) -> tuple[object, ...]:
        """Everything Footer.compose reads from the screen: each active key's binding, whether
        it is enabled and its tooltip."""
        return tuple(
            (key, active.binding, active.enabled, active.tooltip)
            for key, active in self.screen.active_bindings.items()
        )

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        wanted = self._wanted()
        if wanted == self._shown:
            return
        self._shown = wanted
        await super().recompose()
