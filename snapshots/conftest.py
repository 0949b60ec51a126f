"""Snapshot fixtures: the same deterministic scenario workspace the Pilot tests use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import WorkspaceFixture
from tests.tui.scenario import build_scenario


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    ws = build_scenario(tmp_path / "ws")
    yield ws
    ws.close()
