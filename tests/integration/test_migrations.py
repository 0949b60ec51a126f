"""Upgrades of a database that holds state: the rows written before a revision come out of it
verifying, on SQLite and PostgreSQL (the `db_url` fixture runs both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from shipdeck.core.errors import SchemaBehindError
from shipdeck.core.services import audit_log
from shipdeck.core.services.admin import bring_schema_up
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.storage import audit
from shipdeck.core.storage.db import Database
from shipdeck.core.storage.migrations import HEAD_REVISION
from shipdeck.core.storage.migrations.runner import upgrade
from shipdeck.core.storage.tables import DEPLOYMENTS, PLANS, RELEASES
from tests.support.workspace import WorkspaceFixture


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


def test_a_front_end_on_an_older_schema_upgrades_it_audited_or_names_the_fix(
    ws: WorkspaceFixture,
) -> None:
    """The TUI opens on a schema behind this code: an admin's session upgrades it and the log
    says so (as `db upgrade` does); anyone else is told what is wrong and how to fix it."""
    with ws.base.db.write() as conn:
        conn.execute(text("DROP TABLE queued_run"))  # what revision 0004 adds
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    with pytest.raises(SchemaBehindError) as behind:
        bring_schema_up(ws.as_user("erin"), read_only=False)
    assert "schema at revision 0003" in behind.value.message
    assert "shipdeck db upgrade" in behind.value.message
    assert audit_log.list_events(ws.base, AuditFilter(kind="db.upgraded")) == []

    bring_schema_up(ws.as_user("alice"), read_only=False)
    [upgraded] = audit_log.list_events(ws.base, AuditFilter(kind="db.upgraded"))
    assert (upgraded.actor, upgraded.payload) == ("alice", {"from": "0003", "to": HEAD_REVISION})
    with ws.base.db.read() as conn:
        assert audit.verify(conn).ok
