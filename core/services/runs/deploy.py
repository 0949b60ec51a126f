"""`deploy`: a one-app plan under the same policy as any plan."""

from __future__ import annotations

from collections.abc import Callable

from shipdeck.core.errors import BlockedError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import StepView, create_plan
from shipdeck.core.services.runs.starting import run_plan
from shipdeck.core.services.runs.views import RunResult


def deploy_plan(ctx: Context, app: str, version: str, env: str) -> str:
    """The one-app plan `deploy` runs (same policy as any plan; an identical open plan is
    reused); returns its id. Blocked, it raises BlockedError and keeps no plan behind."""
    view = create_plan(ctx, env, [f"{app}@{version}"], kind="deploy", only_if_runnable=True)
    if view.reused and view.blockers:
        why = f"plan {view.id} (open, same content) is blocked: {view.blockers[0].message}"
        raise BlockedError(why, blockers=list(view.blockers))
    return view.id


def deploy(
    ctx: Context,
    app: str,
    version: str,
    env: str,
    progress: Callable[[StepView], None] | None = None,
) -> RunResult:
    """A one-app plan under the same policy, run in the calling thread. If policy blocks it,
    BlockedError names every blocker and no plan is kept."""
    return run_plan(ctx, deploy_plan(ctx, app, version, env), progress)
