"""New plan, edit a plan, deploy one app: pick the environment, the apps and their versions, and
see the waves and every app's diff against what is live before anything is written.

Choices and previews come from core.services.plan_preview in worker threads; saving calls
create_plan or update_plan, which decide again (and may refuse: the refusal is a toast). A new
plan starts with the apps `plan create` would ship by default (latest release not live); a
deploy starts with the one release it was opened on.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from shipdeck.core.domain.plan import PlanKind
from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.services.plan_preview import AppChoice, PlanPreview
from shipdeck.core.services.plans import PlanView
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.diff_text import change_text
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.form import Field, FormScreen, Values
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_text import safe, state_label
from shipdeck.tui.widgets.scroll import VimScroll
from shipdeck.tui.widgets.vim import VimTable


class ChoiceTable(VimTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "screen.include", "Include", key_display="space"),
        Binding("left,h", "screen.version(1)", "Older", key_display="←"),
        Binding("right,l", "screen.version(-1)", "Newer", key_display="→", show=False),
    ]


def preview_text(preview: PlanPreview) -> Text:
    text = Text()
    text.append("waves  ", style="dim")
    versions = {i.app: safe(i.new.version) for i in preview.items}
    for n, wave in enumerate(preview.waves, 1):
        if n > 1:
            text.append("  ↓  ", style="dim")
        text.append(f"{n} ", style="bold cyan")
        text.append(" · ".join(f"{a} {versions[a]}" for a in wave), style="bold")
    text.append("\napprovals  ", style="dim")
    if preview.approvals_required:
        roles = " or ".join(preview.approval_roles) or "anyone"
        text.append(f"{preview.approvals_required} needed from {roles}")
    else:
        text.append("none needed: it is approved when created")
    for item in preview.items:
        text.append("\n\n")
        text.append_text(change_text(item))
    return text


class PlanEditScreen(ShipdeckScreen):
    TITLE = "New plan"
    CSS_PATH = "shipping.tcss"
    MUTATING: ClassVar[dict[str, str]] = {"create": "plan.create", "draft": "plan.create"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "create", "Create"),
        Binding("d", "draft", "Save draft", show=False),  # help and the palette list it
        Binding("E", "next_env", "Env", key_display="E"),
        Binding("tab", "switch_pane", "Apps/preview", show=False),
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    class ChoicesLoaded(Message):
        def __init__(self, env: str, choices: list[AppChoice]) -> None:
            super().__init__()
            self.env = env
            self.choices = choices

    class PreviewLoaded(Message):
        def __init__(self, generation: int, preview: PlanPreview) -> None:
            super().__init__()
            self.generation = generation
            self.preview = preview

    class Saved(Message):
        def __init__(self, view: PlanView, note: str) -> None:
            super().__init__()
            self.view = view
            self.note = note

    def __init__(
        self,
        env: str | None = None,
        *,
        plan: PlanView | None = None,
        pick: dict[str, str] | None = None,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        envs = self.ctx_envs()
        self.env = plan.env if plan else (env if env in envs else envs[0])
        self.plan = plan
        self.deploy = deploy
        if plan is not None:
            pick = {i.app: i.version for i in plan.items}
        self.pick: dict[str, str] | None = pick  # app -> version; None: the default choice
        self.choices: list[AppChoice] = []
        self.chosen: dict[str, ReleaseRecord] = {}
        self.generation = 0
        self.preview: PlanPreview | None = None

    def ctx_envs(self) -> list[str]:
        return self.shipdeck.ctx.config.env_order()

    @property
    def title_text(self) -> str:
        if self.plan is not None:
            return f"Edit plan {self.plan.id}"
        return "Deploy" if self.deploy else "New plan"

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, self.title_text)
        yield Static(id="edit-env")
        yield ChoiceTable(id="edit-apps", cursor_type="row", zebra_stripes=True)
        with VimScroll(id="edit-preview", can_focus=True):
            yield Static("loading…", id="edit-preview-text")
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one(ChoiceTable)
        table.add_columns("ship", "app", "live", "version", "")
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load(self.env)

    @work(thread=True, exclusive=True, exit_on_error=False, group="edit-choices")
    def _load(self, env: str) -> None:
        from shipdeck.core.services.plan_preview import plan_choices

        self.post_message(self.ChoicesLoaded(env, plan_choices(self.ctx, env)))

    @on(ChoicesLoaded)
    def _choices(self, message: ChoicesLoaded) -> None:
        if message.env != self.env:
            return
        first = not self.choices
        self.choices = message.choices
        if first or self.pick is not None:
            self.chosen = self._initial(message.choices)
            self.pick = None
        else:  # a reload keeps what the person chose, where it still exists
            ids = {r.id: r for c in message.choices for r in c.releases}
            self.chosen = {a: ids[r.id] for a, r in self.chosen.items() if r.id in ids}
        self._show_choices()
        self._refresh_preview()
        self.loaded = True

    def _initial(self, choices: list[AppChoice]) -> dict[str, ReleaseRecord]:
        out: dict[str, ReleaseRecord] = {}
        for c in choices:
            if self.pick is not None:
                wanted = self.pick.get(c.app)
                rec = next((r for r in c.releases if r.version == wanted), None)
            else:
                rec = c.latest if c.outdated else None
            if rec is not None:
                out[c.app] = rec
        return out

    # --- showing -------------------------------------------------------------------------------

    def _show_choices(self) -> None:
        env_line = Text("environment  ", style="dim")
        for e in self.ctx_envs():
            style = "bold reverse" if e == self.env else "dim"
            env_line.append(f" {e} ", style=style)
            env_line.append(" ")
        if self.plan is None:
            env_line.append("  E changes it", style="dim")
        self.query_one("#edit-env", Static).update(env_line)
        table = self.query_one(ChoiceTable)
        row = table.cursor_row
        table.clear()
        for c in self.choices:
            rec = self.chosen.get(c.app)
            live = safe(c.live.version) if c.live else "—"
            note = ""
            if rec is not None and c.latest is not None and rec.id != c.latest.id:
                note = f"latest is {safe(c.latest.version)}"
            if not c.releases:
                note = "no releases yet"
            table.add_row(
                Text("[x]", style="bold green") if rec else Text("[ ]", style="dim"),
                Text(c.app, style="bold"),
                Text(live),
                Text(safe(rec.version), style="bold") if rec else Text("-", style="dim"),
                Text(note, style="dim"),
                key=c.app,
            )
        if self.choices:
            table.move_cursor(row=min(row, len(self.choices) - 1), animate=False)

    def _refresh_preview(self) -> None:
        self.generation += 1
        box = self.query_one("#edit-preview-text", Static)
        if not self.chosen:
            self.preview = None
            box.update(Text("nothing chosen: space includes the highlighted app", style="dim"))
            self.refresh_bindings()
            return
        live = {c.app: c.live for c in self.choices if c.live is not None}
        self._preview(self.generation, self.env, dict(self.chosen), live)

    @work(thread=True, exclusive=True, exit_on_error=False, group="edit-preview")
    def _preview(
        self,
        generation: int,
        env: str,
        chosen: dict[str, ReleaseRecord],
        live: dict[str, ReleaseRecord],
    ) -> None:
        from shipdeck.core.services.plan_preview import preview_plan

        self.post_message(self.PreviewLoaded(generation, preview_plan(self.ctx, env, chosen, live)))

    @on(PreviewLoaded)
    def _previewed(self, message: PreviewLoaded) -> None:
        if message.generation != self.generation:
            return  # an answer to an older choice
        self.preview = message.preview
        self.query_one("#edit-preview-text", Static).update(preview_text(message.preview))
        self.refresh_bindings()

    # --- choosing ------------------------------------------------------------------------------

    def _current(self) -> AppChoice | None:
        table = self.query_one(ChoiceTable)
        if not self.choices or not table.row_count:
            return None
        return self.choices[min(table.cursor_row, len(self.choices) - 1)]

    def action_include(self) -> None:
        c = self._current()
        if c is None:
            return
        if c.app in self.chosen:
            del self.chosen[c.app]
        elif c.latest is not None:
            self.chosen[c.app] = c.latest
        else:
            self.notify(f"{c.app} has no releases yet", severity="warning", markup=False)
            return
        self._show_choices()
        self._refresh_preview()

    def action_version(self, step: int) -> None:
        """Move along the app's releases in their listed order (newest first: +1 is older)."""
        c = self._current()
        if c is None or not c.releases:
            return
        rec = self.chosen.get(c.app) or c.latest
        at = next((n for n, r in enumerate(c.releases) if rec and r.id == rec.id), 0)
        self.chosen[c.app] = c.releases[max(0, min(at + step, len(c.releases) - 1))]
        self._show_choices()
        self._refresh_preview()

    def action_next_env(self) -> None:
        envs = self.ctx_envs()
        self.env = envs[(envs.index(self.env) + 1) % len(envs)]
        self.choices, self.chosen, self.preview = [], {}, None
        self.pick = None
        self.query_one("#edit-preview-text", Static).update(Text("loading…", style="dim"))
        self._load(self.env)

    def action_switch_pane(self) -> None:
        table = self.query_one(ChoiceTable)
        self.focus_now(self.query_one(VimScroll) if table.has_focus else table)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_env":
            return self.plan is None
        if action == "draft" and self.plan is not None:
            return False  # an edited plan keeps its state
        if action in ("create", "draft") and self.is_mounted and self.preview is None:
            return None  # shown, but nothing to save yet
        return super().check_action(action, parameters)

    # --- saving --------------------------------------------------------------------------------

    def _specs(self) -> list[str]:
        return [f"{a}@{r.version}" for a, r in sorted(self.chosen.items())]

    def action_create(self) -> None:
        self._confirm(draft=False)

    def action_draft(self) -> None:
        self._confirm(draft=True)

    def _confirm(self, draft: bool) -> None:
        preview = self.preview
        if preview is None:
            return
        body = preview_text(preview)
        if self.plan is not None:
            title = f"Save plan {self.plan.id}?"
            body.append(
                "\n\nIts digest changes: approvals given so far stop counting.", style="bold"
            )
            fields: list[Field] = []
        else:
            what = "Save a draft" if draft else ("Deploy" if self.deploy else "Create a plan")
            title = f"{what} for {self.env}?"
            fields = [Field("name", "Name", placeholder="optional: what this release is")]
        form = FormScreen(title, body, fields, confirm="save" if draft else "create")

        def answered(values: Values | None) -> None:
            if values is not None:
                self._save(draft, values.get("name", ""))

        self.app.push_screen(form, answered)

    @work(thread=True, exit_on_error=False, group="edit-save")
    def _save(self, draft: bool, name: str) -> None:
        from shipdeck.core.services import plans

        if self.plan is not None:
            before = {i.app: i.version for i in self.plan.items}
            add = [
                s for s in self._specs() if before.get(s.partition("@")[0]) != s.partition("@")[2]
            ]
            remove = [a for a in before if a not in self.chosen]
            view = plans.update_plan(self.ctx, self.plan.id, add=add, remove=remove)
            note = f"plan {view.id} saved: it is {state_label(view.state)}"
        else:
            kind: PlanKind = "deploy" if self.deploy else "plan"
            view = plans.create_plan(
                self.ctx, self.env, self._specs(), name=name, draft=draft, kind=kind
            )
            note = f"plan {view.id} created: it is {state_label(view.state)}"
        self.post_message(self.Saved(view, note))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        from shipdeck.tui.screens.plan_detail import PlanScreen

        self.notify(message.note, title="done", markup=False)
        self.app.pop_screen()
        if self.plan is None:
            self.app.push_screen(PlanScreen(message.view.id))
