"""Telling people (webhooks, chat) about plans and runs, without ever getting in their way.

A notification is sent after the change it reports has committed, between its own intent
(`notify.intent`, committed first: no record, no message) and outcome (`notify.sent`, naming the
notifiers that failed). A failing notifier is recorded
as its own audit event (`notify.failed`, naming the notifier and the cause) and otherwise ignored:
a chat outage must never stop a rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipdeck.core.errors import ShipdeckError
from shipdeck.core.services.context import Context


def notify(
    ctx: Context,
    event: str,
    payload: Mapping[str, Any],
    *,
    app: str | None = None,
    env: str | None = None,
    plan: str | None = None,
) -> list[str]:
    """Send `event` to every notifier subscribed to it; returns the names that failed."""
    try:
        notifiers = ctx.notifiers()
    except Exception as exc:  # a broken notifier config must not block the change either
        notifiers = []
        _record_failure(ctx, "(config)", event, exc, app=app, env=env, plan=plan)
    body = {"event": event, "workspace": ctx.config.name, "actor": ctx.actor.name, **payload}
    subscribed = [
        (n, notifier) for n, notifier, events in notifiers if not events or event in events
    ]
    if not subscribed:
        return []
    try:
        with ctx.db.write() as conn:
            intent = ctx.audit(
                conn,
                "notify.intent",
                {"event": event, "notifiers": [n for n, _ in subscribed]},
                app=app,
                env=env,
                plan=plan,
            )
    except ShipdeckError:  # no record of the intent, no message: the change itself stands
        return [n for n, _ in subscribed]
    failed: list[str] = []
    for name, notifier in subscribed:
        try:
            notifier.send(event, body)
        except Exception as exc:  # any failure of any adapter: audited, never raised
            failed.append(name)
            _record_failure(ctx, name, event, exc, app=app, env=env, plan=plan)
    try:
        with ctx.db.write() as conn:
            ctx.audit(
                conn,
                "notify.sent",
                {"event": event, "intent_seq": intent, "failed": failed},
                app=app,
                env=env,
                plan=plan,
            )
    except ShipdeckError:
        pass  # the open intent says a message may have gone out
    return failed


def _record_failure(
    ctx: Context,
    name: str,
    event: str,
    exc: BaseException,
    *,
    app: str | None,
    env: str | None,
    plan: str | None,
) -> None:
    cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        with ctx.db.write() as conn:
            ctx.audit(
                conn,
                "notify.failed",
                {"notifier": name, "event": event, "error": cause[:300]},
                app=app,
                env=env,
                plan=plan,
            )
    except ShipdeckError:  # storage errors arrive translated: the caller's change already committed
        return
