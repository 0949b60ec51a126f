"""The plan's checklist: one line an item, space ticks the highlighted one.

The list only says which item was asked for (`Checklist.Tick`); the plan screen decides whether
this person may tick it now and calls the core, which runs the item's command if it has one.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from shipdeck.tui.widgets.vim import VimOptionList


class Checklist(VimOptionList):
    """The plan's checklist; space ticks the highlighted item (runs its command, if it has one)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "tick", "Tick item", key_display="space"),
    ]

    class Tick(Message):
        def __init__(self, item: str) -> None:
            super().__init__()
            self.item = item

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "tick":
            return self.screen.check_action("tick", ())
        return True

    def action_tick(self) -> None:
        option = self.highlighted_option
        if option is not None and option.id is not None:
            self.post_message(self.Tick(option.id))
