"""state binding: each decision-relevant state row names the audit event that created it;
the lease keeps the hash of its detached runner's one-time token

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Rows that exist before this revision were written by services that appended their events in the
same transaction, but the events carry no content hashes. The upgrade binds them with one
`state.bound` event per table (actor: the upgrade), so `audit verify` proves them from here on;
rows edited before the upgrade cannot be told apart, which the event's payload says.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("release", "plan", "approval", "checklist_tick", "override", "deployment")


def upgrade() -> None:
    for name in _TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column("audit_seq", sa.Integer(), nullable=True))
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner_token", sa.String(), nullable=True))
    _bind_existing(op.get_bind())


def _bind_existing(conn: sa.Connection) -> None:
    from shipdeck.core.storage.binding import bind_as_found

    bind_as_found(conn, _TABLES, "rows written before revision 0002, bound as found at the upgrade")


def downgrade() -> None:
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.drop_column("runner_token")
    for name in reversed(_TABLES):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column("audit_seq")
