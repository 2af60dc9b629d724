"""Reaching a PostgreSQL database: the URL's schema, connection set-up and migrations.

`AX_DB=postgresql://user@host/db?schema=NAME` (or libpq's own
`?options=-csearch_path%3DNAME`) keeps every table in schema NAME, created if missing, so
several installations (or test runs) can share one database. JSON columns are read back as
text so both stores decode them with the same code.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

from automatosx.errors import AxError
from automatosx.store.migrate import check_not_newer, load_migrations

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SEARCH_PATH = re.compile(r"search_path\s*=\s*([^\s,]+)")


def split_schema(url: str) -> tuple[str, str | None]:
    """(libpq conninfo URL without our `schema` parameter, the schema to use or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
            if key == "options" and schema is None:
                found = _SEARCH_PATH.search(unquote(value))
                schema = found.group(1).strip("\"'") if found else None
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise AxError(f"invalid PostgreSQL schema name {schema!r} in AX_DB")
    conninfo = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
    return conninfo, schema


# A connection whose server vanished without a word (a network partition, a lost host) is
# given up in about half a minute instead of the kernel's quarter of an hour, so a worker or
# a runner reconnects (or fails over) rather than waiting on a dead socket: TCP keepalives
# while it waits, and a bound on data sent and never acknowledged. What `AX_DB` sets wins.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def connection_settings(conninfo: str) -> dict[str, Any]:
    """The settings each pooled connection adds to `conninfo` (`KEEPALIVES`)."""
    given = conninfo_to_dict(conninfo)
    return {key: value for key, value in KEEPALIVES.items() if key not in given}


def configure(conn: psycopg.Connection[Any], schema: str | None) -> None:
    """Per-connection set-up: JSON read as text, and the schema on the search path."""
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)
    if schema is not None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def prepare_database(conninfo: str, schema: str | None) -> None:
    """Creates the schema if needed and migrates it, on a short-lived connection."""
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            if schema is not None:
                # a concurrent process may create it a moment before us
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                    )
            configure(conn, schema)
            migrate(conn)
    except psycopg.OperationalError as exc:
        message = " ".join(str(exc).split())
        raise AxError(f"cannot connect to PostgreSQL: {message}") from exc


def schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(found[0] or 0) if found else 0


def migrate(conn: psycopg.Connection[Any], target: int | None = None) -> int:
    """Applies missing migrations up to `target` under a per-schema advisory lock."""
    migrations = load_migrations("postgres")
    goal = migrations[-1].version if target is None else target
    current = schema_version(conn)
    check_not_newer(current, "postgres")
    if current >= goal:
        return current
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('automatosx.migrate:' || current_schema()))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = schema_version(conn)  # another process may have migrated meanwhile
        for migration in migrations:
            if current < migration.version <= goal:
                for statement in migration.statements:
                    conn.execute(statement.encode())  # bytes: sent as-is, no % placeholders
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, time.time()),
                )
                current = migration.version
    return current
