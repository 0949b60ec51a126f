"""Ordering a plan's apps into waves by their dependencies.

A dependency is "a -> b": a depends on b, so b must be live before a starts. Apps in one wave
do not depend on each other and may run together; output is sorted so plans, their digests and
the TUI are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import TopologicalSorter


def find_cycle(depends_on: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a closed path ["a", "b", "a"], or None.

    The cycle is rotated to start at its alphabetically first app, so the same configuration
    always reports the same path.
    """
    return _find_cycle(depends_on, sorted(depends_on))


def _find_cycle(depends_on: Mapping[str, Sequence[str]], roots: Sequence[str]) -> list[str] | None:
    """Depth-first search from `roots`; iterative so deep chains cannot hit the recursion limit."""
    done: set[str] = set()
    for root in roots:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(sorted(set(depends_on.get(root, ()))))]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif dep in on_path:
                cycle = path[path.index(dep) :]
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                return [*cycle, cycle[0]]
            elif dep not in done:
                path.append(dep)
                on_path.add(dep)
                stack.append(iter(sorted(set(depends_on.get(dep, ())))))
    return None


def _plan_deps(app: str, plan: set[str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """Plan apps `app` reaches through dependencies, looking through apps outside the plan."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = list(depends_on.get(app, ()))
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in plan:
            found.add(dep)
        else:
            todo.extend(depends_on.get(dep, ()))
    return found


def compute_waves(apps: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Group `apps` into waves: each app runs in a later wave than every plan app it depends on.

    Dependencies on apps outside the plan still order the plan apps behind them (web -> api ->
    model puts web after model even when api is not being released). Raises ValueError naming
    the cycle when the dependencies reachable from the plan loop.
    """
    plan = set(apps)
    if len(plan) != len(apps):
        dupes = sorted({a for a in apps if list(apps).count(a) > 1})
        raise ValueError(f"apps listed more than once: {', '.join(dupes)}")
    cycle = _find_cycle(depends_on, sorted(plan))
    if cycle:
        raise ValueError(f"dependency cycle: {' -> '.join(cycle)}")
    sorter = TopologicalSorter({app: _plan_deps(app, plan, depends_on) for app in plan})
    sorter.prepare()
    waves: list[list[str]] = []
    while sorter.is_active():
        wave = sorted(sorter.get_ready())
        sorter.done(*wave)
        waves.append(wave)
    return waves
