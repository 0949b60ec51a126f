"""The actions a screen offers, read from its live bindings: what help (`?`) and the palette list.

Only bindings shipdeck declares count: Textual's own (scrolling, `super+c` copy, `ctrl+pageup`)
work as they always do but are not shipdeck actions, so they are not listed. Actions refused to
this person (ShipdeckScreen.denials) are listed too, disabled, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

# Moving a cursor or scrolling: help lists these keys, the palette (a list of things to do) not.
MOVEMENT = ("cursor_", "scroll_", "page_", "first", "last", "scroll(")


@dataclass(frozen=True)
class KeyAction:
    action: str
    description: str
    keys: tuple[str, ...]
    node: DOMNode
    app_wide: bool
    refused: str | None = None  # why this person may not, or None when it may be done

    @property
    def movement(self) -> bool:
        return self.action.startswith(MOVEMENT)


def _declared_by_shipdeck(node: DOMNode) -> dict[str, str]:
    """Action -> description for the bindings shipdeck's own classes declare on this node.
    Textual's keys for the same action (↓ beside j) are listed with it; its other keys are not."""
    out: dict[str, str] = {}
    for cls in reversed(type(node).__mro__):
        if not cls.__module__.startswith("shipdeck."):
            continue
        for b in vars(cls).get("BINDINGS", ()):
            if isinstance(b, Binding):
                out[b.action] = b.description
            else:
                out[b[1]] = b[2] if len(b) > 2 else ""
    return out


def screen_actions(screen: Screen[Any]) -> list[KeyAction]:
    """Every shipdeck action reachable from the focused widget up to the app, with its keys, in
    chain order; a key bound twice counts where it fires (the focused end of the chain)."""
    app = screen.app
    denials: dict[str, str] = getattr(screen, "denials", dict)()
    found: dict[tuple[int, str], KeyAction] = {}
    taken: set[str] = set()
    for node, bindings in screen._modal_binding_chain:
        ours = _declared_by_shipdeck(node)
        for key, binding in bindings:
            refused = denials.get(binding.action)
            if key in taken or (
                refused is None and app._check_action_state(binding.action, node) is False
            ):
                continue
            taken.add(key)
            description = ours.get(binding.action) or binding.description
            if binding.action not in ours or not description:
                continue
            shown = binding.key_display or app.get_key_display(binding) or key
            slot = (id(node), binding.action)
            old = found.get(slot)
            keys = old.keys if old is not None else ()
            found[slot] = KeyAction(
                binding.action,
                description,
                keys if shown in keys else (*keys, shown),
                node,
                node is app,
                refused,
            )
    return list(found.values())
