"""The releases store's batched proof: rows read together are each judged by their own event.

`proven_releases` (the engine's release specs, a plan's model facts) reads the audit events of all
its rows in one query and matches them back by release id; a mismatch there would let an edited
release pass beside an honest one, or refuse the honest one. Real SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shipdeck.core.errors import IntegrityError
from shipdeck.core.services.releases import create_release, proven_releases
from shipdeck.core.storage import releases
from tests.integration.shipping import local_toml
from tests.support.workspace import WorkspaceFixture


def test_an_edited_release_is_named_and_its_honest_neighbour_still_proven(
    ws: WorkspaceFixture,
) -> None:
    ws.write_config(local_toml())
    alice = ws.as_user("alice")
    honest = create_release(alice, "web", "1.0.0").release
    edited = create_release(alice, "web", "1.1.0").release
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE release SET notes = 'approved' WHERE id = :i"), {"i": edited.id})
    with ws.base.db.read() as conn:
        rows = releases.by_ids(conn, [honest.id, edited.id])
        bad = releases.untrusted(conn, rows)
        assert list(bad) == [edited.id]
        assert bad[edited.id].sentence.startswith(f"release row id={edited.id} differs from event")
        assert [r.version for r in proven_releases(conn, [honest.id])] == ["1.0.0"]
        with pytest.raises(IntegrityError, match=r"^release web 1\.1\.0: release row id="):
            proven_releases(conn, [honest.id, edited.id])
