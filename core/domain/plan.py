"""Plans: a coordinated change to one environment, its state machine and its digest.

Pure. A plan's body (items, waves, extra checklist items, failure policy) is stored as canonical
JSON; its digest also covers the environment's current policy and checklist, so approvals (which
bind to the digest) are voided by any change to the plan *or* to the policy it was approved under.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from shipdeck.core.domain.canonical import canonical_bytes, digest_of
from shipdeck.core.domain.config import ApprovalPolicy, ChecklistItem, Environment
from shipdeck.core.domain.windows import FreezeSpec, WindowSpec
from shipdeck.core.errors import ConflictError

if TYPE_CHECKING:
    from shipdeck.core.domain.canary import CanarySpec
    from shipdeck.core.domain.evaluation import EvalGate

PlanState = Literal[
    "draft",
    "awaiting_approval",
    "approved",
    "running",
    "succeeded",
    "failed",
    "rolled_back",
    "aborted",
]
PlanKind = Literal["plan", "deploy", "rollback"]
FailurePolicy = Literal["rollback", "halt"]

STATES: tuple[PlanState, ...] = get_args(PlanState)
PRE_RUN: frozenset[str] = frozenset({"draft", "awaiting_approval", "approved"})
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "rolled_back", "aborted"})

# Every legal move. "awaiting_approval -> awaiting_approval" is a change that voids approvals.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"awaiting_approval", "approved", "aborted"}),
    "awaiting_approval": frozenset({"awaiting_approval", "approved", "running", "aborted"}),
    "approved": frozenset({"awaiting_approval", "approved", "running", "aborted"}),
    "running": frozenset({"succeeded", "failed", "rolled_back", "aborted"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "rolled_back": frozenset(),
    "aborted": frozenset(),
}

_HINTS = {
    "running": "wait for it, or 'shipdeck plan abort'",
    "draft": "submit it first ('shipdeck plan submit')",
}


def check_transition(plan_id: str, old: str, new: str) -> None:
    """Refuse an illegal move with a sentence naming both states (ConflictError, exit 4)."""
    if new in TRANSITIONS.get(old, frozenset()):
        return
    if old in TERMINAL:
        why = f"plan {plan_id} is {label(old)}: it is finished and cannot become {label(new)}"
        raise ConflictError(why + " (create a new plan)")
    hint = _HINTS.get(old)
    raise ConflictError(
        f"plan {plan_id} is {label(old)} and cannot become {label(new)}"
        + (f" ({hint})" if hint else "")
    )


def label(state: str) -> str:
    return state.replace("_", " ")


@dataclass(frozen=True)
class PlanItem:
    """One release in the plan, pinned by id and digest (a release is immutable)."""

    app: str
    version: str
    release_id: int
    digest: str
    commit: str
    author: str  # who recorded the release: may not approve the plan

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "release_id": self.release_id,
            "digest": self.digest,
            "commit": self.commit,
            "author": self.author,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanItem:
        return cls(
            str(d["app"]),
            str(d["version"]),
            int(d["release_id"]),
            str(d["digest"]),
            str(d["commit"]),
            str(d["author"]),
        )


@dataclass(frozen=True)
class PlanBody:
    env: str
    kind: PlanKind
    items: tuple[PlanItem, ...]
    waves: tuple[tuple[str, ...], ...]
    extra_checklist: tuple[ChecklistItem, ...] = ()
    failure_policy: FailurePolicy = "rollback"
    # Rollback plans name the deployment they undo, so the engine can mark it rolled back.
    replaces: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""  # why (rollbacks): shown in lists and details, not only in the audit log

    def item(self, app: str) -> PlanItem:
        for it in self.items:
            if it.app == app:
                return it
        raise KeyError(app)

    @property
    def apps(self) -> list[str]:
        return [a for wave in self.waves for a in wave]

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "kind": self.kind,
            "items": [i.as_dict() for i in sorted(self.items, key=lambda i: i.app)],
            "waves": [list(w) for w in self.waves],
            "extra_checklist": [_checklist_dict(c) for c in self.extra_checklist],
            "failure_policy": self.failure_policy,
            "replaces": dict(sorted(self.replaces.items())),
            # only when given, so bodies recorded before the field existed encode as they did
            **({"reason": self.reason} if self.reason else {}),
        }

    def encode(self) -> bytes:
        return canonical_bytes(self.as_dict())

    @classmethod
    def decode(cls, raw: bytes) -> PlanBody:
        d = json.loads(raw)
        return cls(
            env=d["env"],
            kind=d.get("kind", "plan"),
            items=tuple(PlanItem.from_dict(i) for i in d["items"]),
            waves=tuple(tuple(w) for w in d["waves"]),
            extra_checklist=tuple(
                ChecklistItem(
                    c["id"],
                    c["text"],
                    tuple(c["command"]) if c.get("command") else None,
                    c.get("timeout"),
                )
                for c in d.get("extra_checklist", [])
            ),
            failure_policy=d.get("failure_policy", "rollback"),
            replaces={k: int(v) for k, v in d.get("replaces", {}).items()},
            reason=str(d.get("reason", "")),
        )


def _checklist_dict(c: ChecklistItem) -> dict[str, Any]:
    # `timeout` only when set, so items without one keep the digests they had.
    timeout = {} if c.timeout is None else {"timeout": c.timeout}
    return {
        "id": c.id,
        "text": c.text,
        "command": list(c.command) if c.command else None,
        **timeout,
    }


def checklist(env: Environment, body: PlanBody) -> tuple[ChecklistItem, ...]:
    """The environment's items first, then the plan's own extras (ids stay unique)."""
    own = {c.id for c in env.checklist}
    return env.checklist + tuple(c for c in body.extra_checklist if c.id not in own)


def policy_for(env: Environment, kind: str) -> Environment:
    """The policy a plan of `kind` runs under. A rollback ends an incident: no window, freeze or
    checklist holds it, and it needs the environment's `rollback_approvals` (default none)
    instead of its usual approvals."""
    if kind != "rollback":
        return env
    approvals = ApprovalPolicy(env.rollback_approvals, env.approvals.roles)
    return replace(env, approvals=approvals, checklist=(), windows=(), freezes=())


def policy_snapshot(
    env: Environment,
    windows: Mapping[str, WindowSpec] | None = None,
    freezes: Mapping[str, FreezeSpec] | None = None,
) -> dict[str, Any]:
    """The parts of an environment's policy an approver signs off on (not operational tuning
    such as the warm delay): the rules and the *definitions* of the windows and freezes they
    name, so turning the deny window an approval was given under into an always-open allow
    window changes the digest, not just renaming it."""
    windows = windows or {}
    freezes = freezes or {}
    return {
        "approvals": {"required": env.approvals.required, "roles": sorted(env.approvals.roles)},
        "requires_previous": env.requires_previous,
        "override_roles": sorted(env.override_roles),
        "windows": {name: _window_dict(windows.get(name)) for name in sorted(env.windows)},
        "freezes": {name: _freeze_dict(freezes.get(name)) for name in sorted(env.freezes)},
        "checklist": [_checklist_dict(c) for c in env.checklist],
        # Only when set, so environments without model gates keep the digests they had.
        **({"models": env.models.as_dict()} if env.models.configured else {}),
    }


def _window_dict(w: WindowSpec | None) -> dict[str, Any] | None:
    if w is None:
        return None
    length: dict[str, Any] = (
        {"duration_seconds": w.duration.total_seconds()} if w.duration else {"end": str(w.end)}
    )
    return {"cron": w.cron, **length, "timezone": w.timezone, "kind": w.kind}


def _freeze_dict(f: FreezeSpec | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"start": f.start.isoformat(), "end": f.end.isoformat()}


def policy_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two policy snapshots, named for a person ("window 'business'")."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key in ("windows", "freezes") and isinstance(a, dict) and isinstance(b, dict):
            what = key[:-1] if key == "windows" else "freeze"
            out.extend(
                f"{what} '{name}'" for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)
            )
        else:
            out.append({"approvals": "approval rule", "checklist": "checklist"}.get(key, key))
    return out


def plan_digest(
    env: Environment,
    body: PlanBody,
    windows: Mapping[str, WindowSpec] | None = None,
    freezes: Mapping[str, FreezeSpec] | None = None,
    gates: Mapping[str, EvalGate] | None = None,
    canaries: Mapping[str, CanarySpec] | None = None,
) -> str:
    """Digest over environment, releases, waves, checklist and policy (with the definitions of
    its windows and freezes, and the eval gates and canaries of its apps there): what approvals
    bind to, so loosening a gate or a canary's analysis after the approval voids it."""
    return digest_of(
        {
            "env": env.name,
            "kind": body.kind,
            "items": [
                {"app": i.app, "version": i.version, "digest": i.digest}
                for i in sorted(body.items, key=lambda i: i.app)
            ],
            "waves": [list(w) for w in body.waves],
            "checklist": [_checklist_dict(c) for c in checklist(env, body)],
            "failure_policy": body.failure_policy,
            "policy": policy_snapshot(env, windows, freezes),
            # Only when set, so plans of apps without gates keep the digests they had.
            **({"gates": {a: g.as_dict() for a, g in sorted(gates.items())}} if gates else {}),
            # Likewise: only apps that ship as canaries add their steps and analysis.
            **(
                {"canaries": {a: c.as_dict() for a, c in sorted(canaries.items())}}
                if canaries
                else {}
            ),
        }
    )


def parse_item_spec(spec: str) -> tuple[str, str | None]:
    """'chat-api@1.2.0' -> ('chat-api', '1.2.0'); 'chat-api' -> ('chat-api', None) = latest."""
    app, sep, version = spec.partition("@")
    if not app or (sep and not version):
        raise ValueError(f"'{spec}': expected APP@VERSION (or APP for its latest release)")
    return app, version or None


def slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "item"


def extra_items(texts: Sequence[str]) -> tuple[ChecklistItem, ...]:
    return tuple(ChecklistItem(slug(t), t) for t in texts)
