"""Issue 11's rule for the core, kept: no module over 500 lines and no function over 60, so a
room nobody wants to work in cannot grow back unnoticed. Migration scripts are data and exempt."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
MAX_MODULE, MAX_FUNCTION = 500, 60


def _modules() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py")) if "versions" not in p.parts]


def test_no_core_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(CORE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE
    }
    assert not long, long


def test_no_core_function_is_over_60_lines() -> None:
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION:
                    long[f"{path.relative_to(CORE)}:{node.lineno} {node.name}"] = lines
    assert not long, long
