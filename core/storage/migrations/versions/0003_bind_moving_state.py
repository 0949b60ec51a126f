"""bind moving state: a plan's state, digest, run columns and result, and a deployment's colour,
outcome and end time are now covered by their bindings, and rebound by every event that changes
them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

No column changes: the bindings of existing plan and deployment rows hashed fewer columns, so
each such row is bound again, as found, by one `state.bound` event per table.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from shipdeck.core.storage.binding import bind_as_found

    note = "plan and deployment rows bound again as found at revision 0003 (moving columns added)"
    bind_as_found(op.get_bind(), ("plan", "deployment"), note)


def downgrade() -> None:
    """Nothing to undo in the schema; the events stay in the chain, as every event does."""
