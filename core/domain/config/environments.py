"""`[environments.*]`: the lifecycle order and each environment's policy (approvals, checklist,
windows, failure policy, model gates)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipdeck.core.domain.config.collector import Collector, seconds_at, typename
from shipdeck.core.domain.config.model import ApprovalPolicy, ChecklistItem, Environment, Role
from shipdeck.core.domain.config.strategy import canary_of, parse_strategy
from shipdeck.core.domain.config.windows import duration_at
from shipdeck.core.domain.model_gates import ModelPolicy
from shipdeck.core.domain.windows import FreezeSpec, WindowSpec

_KEYS = {
    "approvals",
    "checklist",
    "windows",
    "freezes",
    "requires_previous",
    "protected",
    "override_roles",
    "task_roles",
    "failure_policy",
    "warm",
    "models",
    "rollback_approvals",
    "strategy",
    "canary",
}


def parse_environments(
    c: Collector,
    raw: dict[str, Any],
    roles: Mapping[str, Role],
    windows: Mapping[str, WindowSpec],
    freezes: Mapping[str, FreezeSpec],
) -> dict[str, Environment]:
    """Environments in file order, which is their lifecycle order (the first has no previous)."""
    if not raw:
        c.err("environments", "at least one environment is required")
    return {
        ename: _parse_environment(c, ename, order, eraw, roles, windows, freezes)
        for order, (ename, eraw) in enumerate(raw.items())
    }


def _parse_environment(
    c: Collector,
    ename: str,
    order: int,
    raw: Any,
    roles: Mapping[str, Role],
    windows: Mapping[str, WindowSpec],
    freezes: Mapping[str, FreezeSpec],
) -> Environment:
    path = f"environments.{ename}"
    c.name(path, "environment", ename)
    e = c.table(raw, path)
    c.keys(e, path, _KEYS)
    approvals = _parse_approvals(c, e, path, roles)
    checklist = _parse_checklist(c, e.get("checklist"), f"{path}.checklist")
    wins = c.refs(e, path, "windows", "window", windows)
    frz = c.refs(e, path, "freezes", "freeze", freezes)
    requires_previous = bool(c.get(e, path, "requires_previous", bool, False))
    if requires_previous and order == 0:
        c.err(f"{path}.requires_previous", "the first environment has no previous one")
    policy = c.choice(e, path, "failure_policy", ("rollback", "halt"), "rollback")
    warm = duration_at(c, e, path, "warm", required=False)
    rollback_approvals = c.get(e, path, "rollback_approvals", int, 0)
    if rollback_approvals < 0:
        c.err(f"{path}.rollback_approvals", "must be 0 or more")
    elif rollback_approvals and not approvals.roles:
        c.err(f"{path}.rollback_approvals", "needs approvals.roles (who may approve)")
    strategy = parse_strategy(c, e, path) or "blue-green"
    canary = canary_of(c, e, path)
    return Environment(
        name=ename,
        order=order,
        approvals=approvals,
        checklist=checklist,
        windows=wins,
        freezes=frz,
        requires_previous=requires_previous,
        protected=bool(c.get(e, path, "protected", bool, False)),
        override_roles=c.refs(e, path, "override_roles", "role", roles),
        task_roles=c.refs(e, path, "task_roles", "role", roles),
        failure_policy="halt" if policy == "halt" else "rollback",
        warm_seconds=warm.total_seconds() if warm else 0.0,
        models=_parse_model_policy(c, e.get("models"), f"{path}.models"),
        rollback_approvals=max(rollback_approvals, 0),
        strategy=strategy,
        canary=canary,
    )


def _parse_approvals(
    c: Collector, e: Mapping[str, Any], path: str, roles: Mapping[str, Role]
) -> ApprovalPolicy:
    apath = f"{path}.approvals"
    raw = c.table(e.get("approvals"), apath)
    c.keys(raw, apath, {"required", "roles"})
    required = c.get(raw, apath, "required", int, 0)
    if required < 0:
        c.err(f"{apath}.required", "must be 0 or more")
    approvers = c.refs(raw, apath, "roles", "role", roles)
    if required and not approvers:
        c.err(f"{apath}.roles", "required when approvals.required > 0")
    return ApprovalPolicy(required, approvers)


def _parse_model_policy(c: Collector, raw: Any, path: str) -> ModelPolicy:
    """`[environments.E.models]`: require_safe_weights, scan = "block" | "warn", licenses."""
    m = c.table(raw, path)
    c.keys(m, path, {"require_safe_weights", "scan", "licenses"})
    scan = c.choice(m, path, "scan", ("block", "warn"), "warn")
    licenses = c.strings(m, path, "licenses")
    for i, lic in enumerate(licenses):
        if not lic.strip() or lic != lic.strip().lower():
            c.err(
                f"{path}.licenses[{i}]",
                f"must be a lower-case licence id like 'apache-2.0', not '{lic}'",
            )
    return ModelPolicy(
        require_safe_weights=bool(c.get(m, path, "require_safe_weights", bool, False)),
        scan="block" if scan == "block" else "warn",
        licenses=licenses,
    )


def _parse_checklist(c: Collector, raw: Any, path: str) -> tuple[ChecklistItem, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.err(path, f"must be an array, not {typename(raw)}")
        return ()
    items: list[ChecklistItem] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        ipath = f"{path}[{i}]"
        item = _checklist_item(c, entry, ipath)
        if item is None:
            continue
        if item.id in seen:
            c.err(ipath, f"duplicate checklist id '{item.id}'")
        seen.add(item.id)
        items.append(item)
    return tuple(items)


def _checklist_item(c: Collector, entry: Any, ipath: str) -> ChecklistItem | None:
    """A plain string, or a table with `text` and optional `id`, `command` (an argv) and
    `timeout` (seconds the command may run)."""
    if isinstance(entry, str):
        return ChecklistItem(_slug(entry), entry)
    if not isinstance(entry, dict):
        c.err(ipath, f"must be a string or a table, not {typename(entry)}")
        return None
    c.keys(entry, ipath, {"id", "text", "command", "timeout"})
    text = c.get(entry, ipath, "text", str, required=True) or ""
    cid = c.get(entry, ipath, "id", str, _slug(text))
    command = c.strings(entry, ipath, "command") if "command" in entry else None
    if command is not None and not command:
        c.err(f"{ipath}.command", "must name a program (a non-empty argv array)")
    timeout = seconds_at(c, entry, ipath, "timeout")
    if timeout is not None and command is None:
        c.err(f"{ipath}.timeout", "only a checklist item with a command has a timeout")
    return ChecklistItem(cid, text, command or None, timeout)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "item"
