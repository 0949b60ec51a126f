"""A small modal form that makes a change deliberate: what will happen, the fields it needs, confirm.

Every changing action of the shipping screens (approve, reject, override, run, abort, restart,
token limits) passes through one. Enter moves to the next field and confirms on the last; with no
fields, Enter or y confirms. Esc (or n, without fields) cancels. Required fields and simple checks
keep the dialog open with the problem shown, rather than sending a request the core would refuse
(the core checks again regardless).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

Values = dict[str, str]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    required: bool = False
    check: Callable[[str], str | None] | None = None  # the problem with a value, or None


def positive_int(value: str) -> str | None:
    """Token limits and the like: empty (keep) or a whole number above zero."""
    if not value:
        return None
    return None if value.isdigit() and int(value) > 0 else "must be a whole number above 0"


class FormScreen(ModalScreen[Values | None]):
    """Dismisses with the stripped field values (an empty dict without fields), or None."""

    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen #form-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    FormScreen.-danger #form-box { border: round $warning; }
    FormScreen #form-title { text-style: bold; }
    FormScreen #form-body { margin-bottom: 1; }
    FormScreen .form-label { color: $text-muted; }
    FormScreen Input { margin-bottom: 1; background: $boost; }
    FormScreen Input:focus { background: $primary-background; }
    FormScreen #form-preview { margin-bottom: 1; }
    FormScreen #form-error { color: $error; text-style: bold; }
    FormScreen #form-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y,enter", "confirm", "Confirm", show=False),
        Binding("n", "cancel", "Cancel", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: RenderableType = "",
        fields: Sequence[Field] = (),
        *,
        confirm: str = "confirm",
        danger: bool = False,
        preview: Callable[[Values], RenderableType] | None = None,
    ) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.form_title = title
        self.body = body
        self.fields = tuple(fields)
        self.confirm_word = confirm
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box"):
            yield Static(Text(self.form_title), id="form-title")
            if self.body:
                yield Static(self.body, id="form-body", markup=False)
            for f in self.fields:
                label = f.label + (" (required)" if f.required else "")
                yield Static(Text(label), classes="form-label")
                yield Input(f.value, placeholder=f.placeholder, id=f"field-{f.name}", compact=True)
            if self.preview is not None:
                yield Static(self.preview(self.values()), id="form-preview")
            error = Static("", id="form-error")
            error.display = False
            yield error
            if self.fields:
                hint = f"Enter: next field, {self.confirm_word} on the last   Esc: cancel"
            else:
                hint = f"y or Enter: {self.confirm_word}   n or Esc: cancel"
            yield Static(Text(hint), id="form-hint")

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#field-{self.fields[0].name}", Input).focus()

    def values(self) -> Values:
        if not self.is_mounted:
            return {f.name: f.value.strip() for f in self.fields}
        return {
            f.name: self.query_one(f"#field-{f.name}", Input).value.strip() for f in self.fields
        }

    def problem(self, values: Values) -> tuple[str, str] | None:
        for f in self.fields:
            value = values[f.name]
            if f.required and not value:
                return f.name, f"{f.label}: required"
            why = f.check(value) if f.check is not None else None
            if why:
                return f.name, f"{f.label}: {why}"
        return None

    @on(Input.Changed)
    def _changed(self) -> None:
        self.query_one("#form-error", Static).display = False
        if self.preview is not None:
            self.query_one("#form-preview", Static).update(self.preview(self.values()))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        names = [f.name for f in self.fields]
        current = (event.input.id or "").removeprefix("field-")
        at = names.index(current) if current in names else len(names) - 1
        if at + 1 < len(names):
            self.query_one(f"#field-{names[at + 1]}", Input).focus()
        else:
            self.action_confirm()

    def action_confirm(self) -> None:
        values = self.values()
        found = self.problem(values)
        if found is not None:
            name, message = found
            error = self.query_one("#form-error", Static)
            error.update(Text(message))
            error.display = True
            self.query_one(f"#field-{name}", Input).focus()
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
