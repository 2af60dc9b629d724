"""The embedded default store: one SQLite file, safe for several `ax` processes at once.

One connection per store object, guarded by a lock so the engine's asyncio thread and a
heartbeat thread can share it. Writes are short `BEGIN IMMEDIATE` transactions; statements
are cached by the driver, pragmas are set once at open, and when `write` returns the
transaction is committed (see `sqlite_file` for what NORMAL and FULL durability mean).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar

from automatosx.errors import StoreFullError
from automatosx.secrets import SecretRedactor, redactor_from_env
from automatosx.store.codec import ColumnCodec
from automatosx.store.records import WorkflowRecord
from automatosx.store.rows import WORKFLOW_COLUMNS, workflow_from_row
from automatosx.store.sql_store import SqlStore
from automatosx.store.sqlite_file import connect, is_busy, is_full, retry_busy
from automatosx.store.stats import register_sqlite_functions
from automatosx.store.wal_checkpointer import WalCheckpointer
from automatosx.store.workflow_sql import search_words
from automatosx.store.write_ops import Connection


class SqliteStore(SqlStore):
    dialect: ClassVar[str] = "sqlite"
    checkpoint_order: ClassVar[str] = "created_at DESC, rowid DESC"

    def __init__(
        self,
        location: str,
        *,
        synchronous: str = "normal",
        redactor: SecretRedactor | None = None,
    ) -> None:
        super().__init__(ColumnCodec(redactor if redactor is not None else redactor_from_env()))
        self.location = location
        self.synchronous = synchronous
        self._conn = connect(location, synchronous)
        register_sqlite_functions(self._conn)  # what the analytics queries call
        self._lock = threading.RLock()
        self._checkpointer: WalCheckpointer | None = None
        if location != ":memory:":  # checkpoints happen off the commit path (see module)
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = WalCheckpointer(location, full_sync=synchronous == "full")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._conn.close()

    def _transaction(self) -> AbstractContextManager[Connection]:
        return _WriteTransaction(self)

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:  # the engine reads the control request every turn: no retry closure first
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            return retry_busy(lambda: self._conn.execute(sql, params).fetchall())

    def _fetch_dicts(self, sql: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            cursor = retry_busy(lambda: self._conn.execute(sql))
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        for row in rows:
            yield dict(zip(names, row, strict=True))

    def search_workflows(self, query: str) -> list[WorkflowRecord]:
        words = search_words(query)
        if not words:
            return []
        # Each word quoted (FTS5 syntax never reaches MATCH) and a prefix; bm25 weights name
        # 10, description 1, tags 4, author 2 (the columns of migration 7), as PostgreSQL's
        # ts_rank weights A..D: best match first, then by name and version.
        match = " AND ".join(f'"{word}"*' for word in words)
        rows = self._fetch_all(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows_fts f JOIN workflows w "
            "ON w.id = f.workflow_id WHERE workflows_fts MATCH ? "
            "ORDER BY bm25(workflows_fts, 0.0, 10.0, 1.0, 4.0, 2.0), w.name, w.version",
            (match,),
        )
        return [workflow_from_row(r) for r in rows]

    def raw_connection(self) -> sqlite3.Connection:
        """The underlying connection, for migrations tests and diagnostics only."""
        return self._conn


class _WriteTransaction:
    """`with store._transaction() as db:` for SQLite: the store's lock, `BEGIN IMMEDIATE`
    (busy retried), then COMMIT, or ROLLBACK on an exception. A plain class rather than a
    generator-based context manager: the engine enters one on every loop turn."""

    __slots__ = ("_store",)

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __enter__(self) -> Connection:
        store = self._store
        conn = store._conn
        store._lock.acquire()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        except BaseException:
            store._lock.release()
            raise
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        store = self._store
        conn = store._conn
        try:
            if exc_type is not None:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and is_full(exc):
                    raise _full(store.location) from exc
                return  # the exception propagates
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as failed:
                if not is_full(failed):
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _full(store.location) from failed
            if store._checkpointer is not None:
                store._checkpointer.note_commit(conn)
        finally:
            store._lock.release()


def _full(location: str) -> StoreFullError:
    return StoreFullError(
        f"the disk holding the database {location} is full; the write was rolled back and "
        "the database is intact"
    )
