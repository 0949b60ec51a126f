"""Stores that build their records from a row by position rely on the table's column order."""

from __future__ import annotations

from dataclasses import fields

from shipdeck.core.storage.releases import ReleaseRow
from shipdeck.core.storage.tables import RELEASES


def test_a_release_row_is_the_release_tables_columns_in_order() -> None:
    assert [c.name for c in RELEASES.c] == [f.name for f in fields(ReleaseRow)]
