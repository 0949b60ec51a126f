"""Upgrades of a database that holds state: the rows written before a revision come out of it
verifying, on SQLite and PostgreSQL (the `db_url` fixture runs both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import insert, text

from shipdeck.core.storage import audit
from shipdeck.core.storage.db import Database
from shipdeck.core.storage.migrations.runner import upgrade
from shipdeck.core.storage.tables import DEPLOYMENTS, PLANS, RELEASES


def test_rows_from_before_the_bindings_are_bound_by_the_upgrade(
    db_url: str,
) -> None:
    """A database at revision 0001 (no bindings) with plan and deployment rows: upgrading binds
    them as found (0002) and again with their moving columns (0003), and verify then passes."""
    db = Database(db_url)
    if db.path is not None:
        db.path.touch()
    upgrade(db.engine, "0001")
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(
            insert(RELEASES).values(
                app="web", version="1.0.0", commit="a" * 40, digest="sha256:" + "b" * 64,
                manifest=b"{}", notes="", created_at=at, created_by="alice",
            )
        )  # fmt: skip
        conn.execute(
            insert(PLANS).values(
                id="p-00000001", env="prod", state="succeeded", digest="sha256:" + "c" * 64,
                body=b"{}", created_at=at, created_by="alice", updated_at=at, result="done",
            )
        )  # fmt: skip
        conn.execute(
            insert(DEPLOYMENTS).values(
                app="web", env="prod", release_id=1, version="1.0.0", commit="a" * 40,
                digest="sha256:" + "b" * 64, color="blue", at=at, by="alice",
                plan_id="p-00000001", outcome="succeeded",
            )
        )  # fmt: skip
    db.upgrade()
    with db.read() as conn:
        result = audit.verify(conn)
        bound = [
            json.loads(bytes(r.payload))["table"]
            for r in conn.execute(
                text("SELECT payload FROM audit_event WHERE kind = 'state.bound' ORDER BY seq")
            )
        ]
    db.dispose()
    assert result.ok, result
    assert bound == ["release", "plan", "deployment", "plan", "deployment"]
