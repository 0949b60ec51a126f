"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.moto_server import moto_server
from tests.support.workspace import (
    PG_ENV,
    PG_SKIP,
    FixedClock,
    WorkspaceFixture,
    postgres_schema,
    three_apps,
)

# The suite's own knobs; every other SHIPDECK_ variable is shipdeck's input.
_SUITE_KNOBS = ("SHIPDECK_TEST_", "SHIPDECK_RACE_ROUNDS")


def pytest_configure(config: pytest.Config) -> None:
    """Run as if from a clean shell: a caller's exported SHIPDECK_ACTOR, SHIPDECK_WORKSPACE or
    SHIPDECK_DATABASE_URL would decide whom the tests act as and where (test_roles failed under
    an exported SHIPDECK_ACTOR). Each test sets what it means to."""
    for name in [n for n in os.environ if n.startswith("SHIPDECK_")]:
        if not name.startswith(_SUITE_KNOBS):
            del os.environ[name]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server for the whole session, with dummy credentials set for boto3."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with moto_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every storage test runs on SQLite and on PostgreSQL (a private schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def ws(tmp_path: Path, db_url: str, clock: FixedClock) -> Iterator[WorkspaceFixture]:
    """The basic three-app workspace with real repositories (5, 8 and 3 commits), migrated."""
    root = tmp_path / "ws"
    root.mkdir()
    w = three_apps(root, db_url, clock)
    yield w
    w.close()
