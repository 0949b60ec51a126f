"""Fixtures for the store-level integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipdeck.core.storage.db import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated, empty database on SQLite and on PostgreSQL (the `db_url` fixture)."""
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()
