"""The PostgreSQL store: the same interface for many worker processes on many machines.

A connection pool (psycopg 3 + psycopg_pool) serves the store's calls; each write is one
transaction that first locks the execution row (`SELECT ... FOR UPDATE`) and checks the
lease owner and epoch, so fencing holds across machines exactly as on SQLite.

Many workers (`ax worker`) share the work through it: the attempts they run
(`store.dispatch`), the turns that record them and start what follows (`store.turns`), and
procrastinate's job queue beside them, in the same database.

Every pooled connection has TCP keepalives (`postgres_connect.KEEPALIVES`): a server that
vanished without a word is given up in about half a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from automatosx.errors import StoreUnavailableError
from automatosx.secrets import SecretRedactor, redactor_from_env
from automatosx.store.codec import ColumnCodec
from automatosx.store.postgres_connect import (
    configure,
    connection_settings,
    prepare_database,
    split_schema,
)
from automatosx.store.records import WorkflowRecord
from automatosx.store.rows import WORKFLOW_COLUMNS, workflow_from_row
from automatosx.store.sql_store import SqlStore
from automatosx.store.workflow_sql import search_words
from automatosx.store.write_ops import Connection, Cursor

_PG_SQL: dict[str, str] = {}
MAX_LEXEME_BYTES = 2047  # PostgreSQL leaves longer words out of a tsvector (and a tsquery)
# The pool logs each failed reconnection as a warning; with no logging configured Python
# would print them on stderr, in the middle of a run that is only waiting for its database.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


def _connection_lost(exc: Exception) -> bool:
    """A failure of the connection itself (the server went away, or refuses connections
    while it restarts), not of a statement."""
    if isinstance(exc, PoolTimeout):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P"))
    )


def _unreachable(exc: Exception) -> StoreUnavailableError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    return StoreUnavailableError(f"cannot reach PostgreSQL: {message}")


def _pg(sql: str) -> str:
    """The portable `?` placeholders as psycopg's `%s` (cached: the hot path stays cheap)."""
    translated = _PG_SQL.get(sql)
    if translated is None:
        translated = _PG_SQL[sql] = sql.replace("?", "%s")
    return translated


class _PgConnection:
    """A psycopg connection speaking the portable SQL of `SqlStore`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return self._conn.execute(_pg(sql), params)


class PostgresStore(SqlStore):
    dialect: ClassVar[str] = "postgres"
    connections_can_drop: ClassVar[bool] = True
    lock_row: ClassVar[str] = " FOR UPDATE"
    checkpoint_order: ClassVar[str] = "created_at DESC, seq DESC"

    def __init__(
        self, url: str, *, redactor: SecretRedactor | None = None, max_connections: int = 4
    ) -> None:
        super().__init__(ColumnCodec(redactor if redactor is not None else redactor_from_env()))
        self.conninfo, self.schema = split_schema(url)
        prepare_database(self.conninfo, self.schema)
        schema = self.schema
        self._pool: ConnectionPool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, **connection_settings(self.conninfo)},
            configure=lambda conn: configure(conn, schema),
            open=True,
            timeout=5,  # waiting for a connection: the store facade retries, the lease bounds it
        )

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PgConnection(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if _connection_lost(exc):
                raise _unreachable(exc) from exc
            raise

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(_pg(sql), params).fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if _connection_lost(exc):
                raise _unreachable(exc) from exc
            raise

    def _fetch_dicts(self, sql: str) -> Iterator[dict[str, Any]]:
        with self._pool.connection() as conn:
            cursor = conn.execute(sql)
            names = [d.name for d in cursor.description or ()]
            rows = cursor.fetchall()
        for row in rows:
            yield dict(zip(names, row, strict=True))

    def search_workflows(self, query: str) -> list[WorkflowRecord]:
        words = search_words(query)
        if not words:
            return []
        if any(len(word.encode()) > MAX_LEXEME_BYTES for word in words):
            return []  # never indexed; to_tsquery would drop it and match on the others
        # Words are letters and digits only, so no tsquery syntax reaches to_tsquery.
        tsquery = " & ".join(f"{word}:*" for word in words)
        rows = self._fetch_all(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows w "
            "WHERE w.search_vector @@ to_tsquery('simple', ?) "
            "ORDER BY ts_rank(w.search_vector, to_tsquery('simple', ?)) DESC, w.name, w.version",
            (tsquery, tsquery),
        )
        return [workflow_from_row(r) for r in rows]

    def raw_connection(self) -> Any:
        """A pooled connection context (diagnostics and tests only)."""
        return cast(Any, self._pool.connection())
