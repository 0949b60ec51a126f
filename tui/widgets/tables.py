"""Filling a DataTable so that its first frame with data already has its final column widths.

DataTable measures auto-width columns on a later idle; a frame drawn in between could stay in its
render caches with header-only widths (collapsed columns until a refresh, seen under load on the
dashboard when it was a DataTable). Here the widths come from the cells themselves, before any row
is added, and never shrink, so columns do not jump while rows change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from textual.widgets import DataTable


class Measured(Protocol):
    """A cell that knows its width in terminal cells (a rich Text)."""

    @property
    def cell_len(self) -> int: ...


CellT = TypeVar("CellT", bound=Measured)


def replace_rows(
    table: DataTable[CellT],
    columns: Sequence[str],
    rows: Sequence[tuple[str | None, Sequence[CellT]]],
    widths: dict[str, int],
) -> None:
    """Clear `table` and fill it: `columns` name (and key) the columns, `rows` are (key, cells).
    `widths` remembers each column's width between calls (the caller keeps one dict per table)."""
    for i, name in enumerate(columns):
        need = max([len(name), *(cells[i].cell_len for _, cells in rows)])
        widths[name] = max(need, widths.get(name, 0))
    table.clear(columns=True)
    for name in columns:
        table.add_column(name, key=name, width=widths[name])
    for key, cells in rows:
        table.add_row(*cells, key=key)
