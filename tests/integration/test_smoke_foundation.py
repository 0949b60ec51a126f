"""End-to-end smoke of the foundation on both databases: release, status, audit verify."""

from __future__ import annotations

from shipdeck.core.services import audit_log
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.status import status
from tests.support.workspace import WorkspaceFixture


def test_release_status_and_audit_round_trip(ws: WorkspaceFixture) -> None:
    alice = ws.as_user("alice")
    first = create_release(alice, "chat-api", "1.0.0", commit=ws.shas["chat-api"][2])
    again = create_release(alice, "chat-api", "1.0.0", commit=ws.shas["chat-api"][2])
    assert first.created and not again.created
    assert again.release.digest == first.release.digest
    create_release(alice, "chat-api", "1.1.0")
    apps = {a.app: a for a in status(alice)}
    cell = apps["chat-api"].cells[0]
    assert cell.latest is not None and cell.latest.version == "1.1.0"
    assert cell.deployed is None
    result = audit_log.verify(alice)
    assert result.ok and result.events == 2
