"""queued runs: plans waiting for their window to open (`plan run --when-open`)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A new table, bound like the plan rows it points at; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queued_run",
        sa.Column("plan_id", sa.String(), sa.ForeignKey("plan.id"), primary_key=True),
        sa.Column("env", sa.String(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("waiter", sa.String(), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
    )
    op.create_index("ix_queued_run_env", "queued_run", ["env"])


def downgrade() -> None:
    op.drop_index("ix_queued_run_env", table_name="queued_run")
    op.drop_table("queued_run")
