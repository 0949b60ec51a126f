"""The Ops screen's token-limit line and the way to change the limits: a form, then a review.

`TokenLimitsLine` reads the limits of one app in one environment (core.services.tasks, audited
and role-checked there) in a worker and shows them on one line; `change` asks for the new values
(empty keeps one), shows current against new, asks once more, then sets them. The screen decides
whether the person may see or change them at all; this widget never shows what it was not given.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.errors import ShipdeckError
from shipdeck.core.ports import TokenLimits
from shipdeck.core.services.context import Context
from shipdeck.tui.widgets.form import Field, FormScreen, Values, positive_int
from shipdeck.tui.widgets.header import session_ctx
from shipdeck.tui.widgets.working import ReportsFailures


def limit(value: int | None) -> str:
    return "not set" if value is None else f"{value:,}"


def limits_change(old: TokenLimits, new: TokenLimits) -> Text:
    """Current against new, one limit a line, changes bold."""
    text = Text()
    for i, key in enumerate(("tpm", "rpm")):
        before, after = getattr(old, key), getattr(new, key)
        text.append("\n" if i else "")
        text.append(f"{key}  ", style="dim")
        text.append(limit(before))
        if after == before:
            text.append("  (unchanged)", style="dim")
        else:
            text.append("  →  ", style="dim")
            text.append(limit(after), style="bold yellow")
    return text


def limits_line(limits: TokenLimits | None, note: str = "") -> Text:
    """The line the screen shows: both limits, or why they are unknown (the core's words)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("token limits  ", style="dim")
    if limits is None:
        text.append(strip_controls(note) or "unknown", style="dim")
    else:
        text.append("tpm ", style="dim")
        text.append(limit(limits.tpm), style="bold")
        text.append("  rpm ", style="dim")
        text.append(limit(limits.rpm), style="bold")
    return text


def wanted(old: TokenLimits, values: Values) -> TokenLimits:
    """The limits the form asks for: a field left empty (or not a positive number) keeps its value."""
    tpm, rpm = values.get("tpm", ""), values.get("rpm", "")
    return TokenLimits(
        int(tpm) if tpm.isdigit() and int(tpm) > 0 else old.tpm,
        int(rpm) if rpm.isdigit() and int(rpm) > 0 else old.rpm,
    )


def limits_form(app: str, env: str, old: TokenLimits, reason_required: bool) -> FormScreen:
    fields = [
        Field("tpm", "Tokens per minute", str(old.tpm or ""), check=positive_int),
        Field("rpm", "Requests per minute", str(old.rpm or ""), check=positive_int),
        Field("reason", "Reason", placeholder="why (recorded)", required=reason_required),
    ]
    return FormScreen(
        f"Token limits of {app} in {env}",
        Text("Empty keeps a value. Current and new:"),
        fields,
        confirm="review",
        preview=lambda values: limits_change(old, wanted(old, values)),
    )


def confirm_form(app: str, env: str, old: TokenLimits, new: TokenLimits) -> FormScreen:
    return FormScreen(
        f"Change token limits of {app} in {env}?",
        limits_change(old, new),
        confirm="apply",
        danger=True,
    )


class TokenLimitsLine(Static, ReportsFailures):
    """One app's token limits in one environment, and the form that changes them."""

    class Read(Message):
        def __init__(self, generation: int, limits: TokenLimits | None, note: str) -> None:
            super().__init__()
            self.generation = generation
            self.limits = limits
            self.note = note

    class Changed(Message):
        def __init__(self, note: str, limits: TokenLimits, where: tuple[str, str]) -> None:
            super().__init__()
            self.note = note
            self.limits = limits
            self.where = where  # the app and environment the new limits belong to

    def __init__(self, ctx: Context, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._ctx = ctx
        self.generation = 0
        self.limits: TokenLimits | None = None  # known for `where`; None while unknown
        self.where = ("", "")

    @property
    def ctx(self) -> Context:
        return session_ctx(self, self._ctx)

    def show(self, app: str, env: str, why_not: Text | None) -> None:
        """Another app or environment: read its limits, or show why they are not shown."""
        self.generation += 1
        self.limits = None
        self.where = (app, env)
        if why_not is not None:
            self.update(why_not)
            return
        self.update(Text("token limits: reading…", style="dim"))
        self._read(self.generation, app, env)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ops-limits")
    def _read(self, generation: int, app: str, env: str) -> None:
        from shipdeck.core.services.tasks import read_limits

        try:
            self.post_message(self.Read(generation, read_limits(self.ctx, app, env), ""))
        except ShipdeckError as exc:
            self.post_message(self.Read(generation, None, exc.message))

    @on(Read)
    def _limits_read(self, message: Read) -> None:
        if message.generation != self.generation:
            return
        self.limits = message.limits
        self.update(limits_line(self.limits, message.note))
        self.refresh_bindings()

    def change(self, reason_required: bool) -> None:
        """Ask for new limits, show current against new, ask again, then set them."""
        old = self.limits
        if old is None:
            return
        app, env = self.where

        def answered(values: Values | None) -> None:
            if values is None:
                return
            new = wanted(old, values)
            if new == old:
                self.notify("nothing to change: the limits stay as they are", markup=False)
                return
            reason = values.get("reason") or None

            def confirmed(ok: Values | None) -> None:
                if ok is not None:
                    self._set(app, env, old, new, reason)

            self.app.push_screen(confirm_form(app, env, old, new), confirmed)

        self.app.push_screen(limits_form(app, env, old, reason_required), answered)

    @work(thread=True, exit_on_error=False, group="ops-task")
    def _set(
        self, app: str, env: str, old: TokenLimits, new: TokenLimits, reason: str | None
    ) -> None:
        from shipdeck.core.services.tasks import set_limits

        change = set_limits(
            self.ctx,
            app,
            env,
            tpm=new.tpm if new.tpm != old.tpm else None,
            rpm=new.rpm if new.rpm != old.rpm else None,
            reason=reason,
        )
        note = f"{app}/{env}: tpm {limit(change.new.tpm)}, rpm {limit(change.new.rpm)}"
        self.post_message(self.Changed(note, change.new, (app, env)))

    @on(Changed)
    def _changed(self, message: Changed) -> None:
        self.notify(message.note, title="done", markup=False)
        if message.where == self.where:
            self.limits = message.limits
            self.update(limits_line(self.limits))
