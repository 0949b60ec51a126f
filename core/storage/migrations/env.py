"""Alembic environment: uses the engine handed over by the runner (render_as_batch for SQLite)."""

from __future__ import annotations

from alembic import context

from shipdeck.core.storage.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
