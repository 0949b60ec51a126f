"""One release, or the difference between two: Enter on a release row opens it; `c` on a row after
marking another with `x` compares them.

A release is an immutable manifest (commit, artifacts pinned to digests, config), so its detail
lists exactly that. A diff names a downgrade as one and lists commits, model files, objects and
config, as core.services.plan_preview.compare reports them (the same words as the plan editor).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.services.plan_preview import Change
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.diff_text import change_text
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_text import safe, when
from shipdeck.tui.widgets.scroll import VimScroll


def manifest_text(rec: ReleaseRecord) -> Text:
    m = rec.manifest
    text = Text()
    for label, value in (
        ("version", safe(m.version)),
        ("commit", m.commit),
        ("digest", rec.digest),
        ("created", f"{when(rec.created_at)} UTC by {safe(rec.created_by)}"),
    ):
        text.append(f"{label:<9}", style="dim")
        text.append(f"{value}\n")
    notes = safe(rec.notes)
    if notes:
        text.append(f"{'notes':<9}", style="dim")
        text.append(f"{notes}\n")
    text.append("\nartifacts", style="bold")
    if not m.artifacts:
        text.append("  none", style="dim")
    for a in m.artifacts:
        text.append(f"\n  {safe(a.name)}", style="bold")
        text.append(f"  {safe(a.uri)}")
        if a.resolved:
            text.append(f"\n    pinned {safe(a.resolved)}", style="dim")
        for path, size, _ in a.files:
            text.append(f"\n    {safe(path)}  {size} bytes", style="dim")
    text.append("\n\nconfig", style="bold")
    if not m.config:
        text.append("  none", style="dim")
    for key, value in sorted(m.config.items()):
        text.append(f"\n  {safe(key)} = {safe(value)}")
    return text


class ReleaseScreen(ShipdeckScreen):
    TITLE = "Release"
    CSS_PATH = "shipping.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    class Loaded(Message):
        def __init__(self, body: ReleaseRecord | Change, head_seq: int) -> None:
            super().__init__()
            self.body = body
            self.head_seq = head_seq

    def __init__(self, app_name: str, version: str, against: str | None = None) -> None:
        super().__init__()
        self.app_name = app_name
        self.version = version
        self.against = against

    def compose(self) -> ComposeResult:
        title = f"{self.app_name} {self.version}"
        if self.against is not None:
            title = f"{self.app_name} {self.against} → {self.version}"
        yield HeaderBar(self.ctx, title)
        with VimScroll(id="release-body", can_focus=True):
            yield Static("loading…", id="release-text")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(VimScroll).focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="release")
    def _load(self) -> None:
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.plan_preview import compare_versions
        from shipdeck.core.services.releases import get_release

        seq, _ = head(self.ctx)
        if self.against is None:
            body: ReleaseRecord | Change = get_release(self.ctx, self.app_name, self.version)
        else:
            body = compare_versions(self.ctx, self.app_name, self.against, self.version)
        self.post_message(self.Loaded(body, seq))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        body = message.body
        shown = manifest_text(body) if isinstance(body, ReleaseRecord) else change_text(body, None)
        self.query_one("#release-text", Static).update(shown)
        self.mark_loaded(message.head_seq)
