"""Plan waves: dependency order, determinism and cycle reporting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdeck.core.domain.waves import compute_waves, find_cycle

DEMO = {"model-server": [], "chat-api": ["model-server"], "web": ["chat-api"]}


def test_demo_chain_runs_one_app_per_wave() -> None:
    assert compute_waves(["web", "chat-api", "model-server"], DEMO) == [
        ["model-server"],
        ["chat-api"],
        ["web"],
    ]


def test_demo_with_independent_web_shares_the_first_wave() -> None:
    deps = {**DEMO, "web": []}
    assert compute_waves(["web", "chat-api", "model-server"], deps) == [
        ["model-server", "web"],
        ["chat-api"],
    ]


def test_web_depending_on_the_model_runs_with_the_api() -> None:
    deps = {**DEMO, "web": ["model-server"]}
    assert compute_waves(["web", "chat-api", "model-server"], deps) == [
        ["model-server"],
        ["chat-api", "web"],
    ]


def test_diamond_takes_the_longest_path() -> None:
    deps = {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": []}
    assert compute_waves(["top", "right", "left", "base"], deps) == [
        ["base"],
        ["left", "right"],
        ["top"],
    ]
    # The shortcut top -> base must not pull top forward.
    deps["top"] = ["left", "base"]
    assert compute_waves(["base", "left", "top", "right"], deps) == [
        ["base"],
        ["left", "right"],
        ["top"],
    ]


def test_dependency_outside_the_plan_still_orders_through_it() -> None:
    # chat-api is not released, but web -> chat-api -> model-server still puts web second.
    assert compute_waves(["web", "model-server"], DEMO) == [["model-server"], ["web"]]


def test_dependencies_outside_the_plan_alone_are_ignored() -> None:
    assert compute_waves(["web"], DEMO) == [["web"]]
    assert compute_waves(["web", "chat-api"], {"web": ["unknown-app"], "chat-api": []}) == [
        ["chat-api", "web"]
    ]


def test_empty_plan_has_no_waves() -> None:
    assert compute_waves([], DEMO) == []


def test_cycle_is_named() -> None:
    deps = {"a": ["b"], "b": ["a"]}
    with pytest.raises(ValueError, match="dependency cycle: a -> b -> a"):
        compute_waves(["a", "b"], deps)


def test_cycle_through_an_app_outside_the_plan_is_still_an_error() -> None:
    deps = {"web": ["api"], "api": ["model"], "model": ["api"]}
    with pytest.raises(ValueError, match="api -> model -> api"):
        compute_waves(["web"], deps)


def test_cycle_elsewhere_does_not_block_an_unrelated_plan() -> None:
    deps = {"web": [], "a": ["b"], "b": ["a"]}
    assert compute_waves(["web"], deps) == [["web"]]


def test_duplicate_apps_are_refused() -> None:
    with pytest.raises(ValueError, match="more than once: web"):
        compute_waves(["web", "web"], DEMO)


def test_find_cycle() -> None:
    assert find_cycle(DEMO) is None
    assert find_cycle({"x": ["x"]}) == ["x", "x"]
    # Reported from its alphabetically first app whatever the mapping order.
    assert find_cycle({"c": ["a"], "b": ["c"], "a": ["b"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"z": ["y"], "y": ["w", "x"], "x": ["z"], "w": []}) == ["x", "z", "y", "x"]


def test_find_cycle_handles_long_chains_without_recursion() -> None:
    chain = {f"app{i:05d}": [f"app{i + 1:05d}"] for i in range(5000)}
    assert find_cycle(chain) is None
    chain["app05000"] = ["app00000"]
    cycle = find_cycle(chain)
    assert cycle is not None and len(cycle) == 5002 and cycle[0] == cycle[-1] == "app00000"


@st.composite
def _dag(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    """Random acyclic dependencies (each app depends only on lower-numbered ones) and a plan."""
    names = [f"app{i}" for i in range(draw(st.integers(1, 9)))]
    deps = {
        name: draw(st.lists(st.sampled_from(names[:i]), max_size=3)) if i else []
        for i, name in enumerate(names)
    }
    plan = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    return draw(st.permutations(plan)), deps


def _reaches(deps: dict[str, list[str]], src: str, dst: str) -> bool:
    todo, seen = list(deps.get(src, [])), set()
    while todo:
        node = todo.pop()
        if node == dst:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(deps.get(node, []))
    return False


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(_dag())
def test_waves_respect_every_transitive_dependency(
    case: tuple[list[str], dict[str, list[str]]],
) -> None:
    plan, deps = case
    waves = compute_waves(plan, deps)
    wave_of = {app: i for i, wave in enumerate(waves) for app in wave}
    assert sorted(wave_of) == sorted(plan)
    assert all(wave == sorted(wave) and wave for wave in waves)
    for a in plan:
        for b in plan:
            if _reaches(deps, a, b):
                assert wave_of[a] > wave_of[b], (a, b)
        # As early as possible: something it depends on sits in the wave right before.
        if wave_of[a]:
            assert any(_reaches(deps, a, b) and wave_of[b] == wave_of[a] - 1 for b in plan)
    assert compute_waves(list(reversed(plan)), deps) == waves
