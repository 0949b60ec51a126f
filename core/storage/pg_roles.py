"""PostgreSQL that enforces who did what, instead of trusting the client to say so.

An owner role (NOLOGIN) owns the schema's tables; a people role (NOLOGIN) holds what a person may
do; each person logs in as their own role, a member of it. People may read everything and change
state, but the audit log is append-only for them (INSERT and SELECT, no UPDATE, DELETE or
TRUNCATE), and every row that names who acted (audit_event.actor, approval.by, ...) must name the
session_user, checked by a trigger the server runs: a modified client still cannot sign as someone
else. With `[identity] source = "database"` shipdeck itself takes the actor from session_user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

from shipdeck.core.errors import UsageError

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# (table, column naming the actor, events): the row must be signed by the session's own login.
SIGNED = (
    ("audit_event", "actor", "INSERT"),
    ("approval", "by", "INSERT OR UPDATE"),
    ("checklist_tick", "by", "INSERT"),
    ("override", "by", "INSERT"),
    ("plan", "created_by", "INSERT"),
    ("queued_run", "by", "INSERT"),
    ("release", "created_by", "INSERT"),
)
APPEND_ONLY = ("audit_event",)
READ_ONLY = ("alembic_version",)


@dataclass(frozen=True)
class RoleSetup:
    owner: str
    people: str
    persons: tuple[str, ...]
    schema: str


def role_name(name: str, what: str) -> str:
    """Role names go into DDL unquoted-safe: lower-case letters, digits and underscores."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{what} '{name}': a PostgreSQL role name here is lower-case letters, digits and _ "
            "(at most 63, not starting with a digit)"
        )
    return name


def _ensure_role(conn: Connection, name: str, login: bool) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    if exists is None:
        conn.execute(text(f'CREATE ROLE "{name}" {"LOGIN" if login else "NOLOGIN"}'))


def setup_roles(conn: Connection, owner: str, people: str, persons: tuple[str, ...]) -> RoleSetup:
    """Idempotent: create what is missing, (re)grant, (re)install the signing triggers."""
    schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
    _ensure_role(conn, owner, login=False)
    _ensure_role(conn, people, login=False)
    for person in persons:
        _ensure_role(conn, person, login=True)
        conn.execute(text(f'GRANT "{people}" TO "{person}"'))
    tables = [
        str(t)
        for t in conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        ).scalars()
    ]
    _grant(conn, schema, tables, owner, people)
    _sign(conn, schema, tables, owner, people)
    return RoleSetup(owner, people, persons, schema)


def _grant(conn: Connection, schema: str, tables: list[str], owner: str, people: str) -> None:
    """The owner owns every table; people may read and change state, never the audit log."""
    for table in tables:
        conn.execute(text(f'ALTER TABLE "{schema}"."{table}" OWNER TO "{owner}"'))
    # The owner needs the schema too: foreign-key checks run as the table's owner.
    conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{owner}", "{people}"'))
    conn.execute(
        text(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{people}"'
        )
    )
    conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{people}"'))
    for table in APPEND_ONLY:
        conn.execute(
            text(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{schema}"."{table}" FROM "{people}"')
        )
    for table in READ_ONLY:
        conn.execute(
            text(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "{schema}"."{table}" FROM "{people}"')
        )


def _sign(conn: Connection, schema: str, tables: list[str], owner: str, people: str) -> None:
    """The trigger that refuses a row naming anyone but the session's own login (SIGNED)."""
    conn.execute(
        text(f"""
        CREATE OR REPLACE FUNCTION "{schema}".shipdeck_signed_by_session() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        DECLARE
            claimed text := to_jsonb(NEW) ->> TG_ARGV[0];
        BEGIN
            IF pg_has_role(session_user, '{people}', 'MEMBER')
               AND claimed IS DISTINCT FROM session_user::text THEN
                RAISE EXCEPTION 'shipdeck: % may not write %.% as %',
                    session_user, TG_TABLE_NAME, TG_ARGV[0], claimed
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END
        $fn$
        """)
    )
    conn.execute(text(f'ALTER FUNCTION "{schema}".shipdeck_signed_by_session() OWNER TO "{owner}"'))
    for table, column, events in SIGNED:
        if table not in tables:
            continue
        conn.execute(text(f'DROP TRIGGER IF EXISTS shipdeck_signed ON "{schema}"."{table}"'))
        conn.execute(
            text(
                f'CREATE TRIGGER shipdeck_signed BEFORE {events} ON "{schema}"."{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION \"{schema}\".shipdeck_signed_by_session('{column}')"
            )
        )
