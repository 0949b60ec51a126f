"""Alembic migrations for SQLite and PostgreSQL.

HEAD_REVISION is kept as a constant so the per-command schema check costs one query instead of
loading Alembic's script directory (tests assert it equals the real head).
"""

HEAD_REVISION = "0004"
