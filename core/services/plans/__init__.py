"""Plans before they run: drafting, approvals, checklist, overrides, and the policy verdict.

Every function here takes a Context, is safe to call from a worker thread, writes its audit event
in the same transaction as its change, and returns plain dataclasses (PlanView, PlanSummary,
ChecklistView, OverrideView), never table rows. Running plans is core.services.runs.

Each name is imported from its module on first use (PEP 562): status reads the queue and the
dashboard a window's zone through this package, and importing every plan service with them
was ~20 ms of the TUI's first frame (bench/tui_start.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipdeck.core.services.plans.approvals import approve, reject, submit_plan
    from shipdeck.core.services.plans.checklist import OUTPUT_LIMIT, check_item
    from shipdeck.core.services.plans.drafting import (
        build_body,
        create_plan,
        insert_plan,
        new_plan_id,
        open_twin,
        update_plan,
    )
    from shipdeck.core.services.plans.liveness import lease_live, read_lock
    from shipdeck.core.services.plans.lookups import (
        env_config,
        env_window,
        load_plan_row,
        untargeted,
        window_tz,
    )
    from shipdeck.core.services.plans.overrides import (
        DEFAULT_OVERRIDE,
        MAX_OVERRIDE,
        acknowledge_override,
        open_reviews,
        override,
    )
    from shipdeck.core.services.plans.queued import QueuedView, queued_of, waiting_in
    from shipdeck.core.services.plans.reading import get_plan, list_plans, steps_of
    from shipdeck.core.services.plans.verdicts import (
        Verdict,
        digest_for,
        effective_state,
        model_facts,
        snapshot_for,
        unverified_blocker,
        verdict,
    )
    from shipdeck.core.services.plans.views import (
        ApprovalView,
        ChecklistView,
        ItemView,
        LockView,
        OverrideView,
        PlanSummary,
        PlanView,
        StepView,
    )

# Which module of this package each public name lives in.
_MODULES: dict[str, tuple[str, ...]] = {
    "approvals": ("approve", "reject", "submit_plan"),
    "checklist": ("OUTPUT_LIMIT", "check_item"),
    "drafting": (
        "build_body",
        "create_plan",
        "insert_plan",
        "new_plan_id",
        "open_twin",
        "update_plan",
    ),
    "liveness": ("lease_live", "read_lock"),
    "lookups": ("env_config", "env_window", "load_plan_row", "untargeted", "window_tz"),
    "overrides": (
        "DEFAULT_OVERRIDE",
        "MAX_OVERRIDE",
        "acknowledge_override",
        "open_reviews",
        "override",
    ),
    "queued": ("QueuedView", "queued_of", "waiting_in"),
    "reading": ("get_plan", "list_plans", "steps_of"),
    "verdicts": (
        "Verdict",
        "digest_for",
        "effective_state",
        "model_facts",
        "snapshot_for",
        "unverified_blocker",
        "verdict",
    ),
    "views": (
        "ApprovalView",
        "ChecklistView",
        "ItemView",
        "LockView",
        "OverrideView",
        "PlanSummary",
        "PlanView",
        "StepView",
    ),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "DEFAULT_OVERRIDE",
    "MAX_OVERRIDE",
    "OUTPUT_LIMIT",
    "ApprovalView",
    "ChecklistView",
    "ItemView",
    "LockView",
    "OverrideView",
    "PlanSummary",
    "PlanView",
    "QueuedView",
    "StepView",
    "Verdict",
    "acknowledge_override",
    "approve",
    "build_body",
    "check_item",
    "create_plan",
    "digest_for",
    "effective_state",
    "env_config",
    "env_window",
    "get_plan",
    "insert_plan",
    "lease_live",
    "list_plans",
    "load_plan_row",
    "model_facts",
    "new_plan_id",
    "open_reviews",
    "open_twin",
    "override",
    "queued_of",
    "read_lock",
    "reject",
    "snapshot_for",
    "steps_of",
    "submit_plan",
    "untargeted",
    "unverified_blocker",
    "update_plan",
    "verdict",
    "waiting_in",
    "window_tz",
]
