"""Opening a SQLite database file the way every `ax` process must: private, WAL, migrated.

- The file is created 0600 before SQLite opens it; SQLite gives `-wal` and `-shm` the mode
  of the database file, so all three stay private. Existing files are tightened to 0600.
- WAL lets readers (`status`, `events --follow`) run while a runner writes; `busy_timeout`
  makes a second writer wait (up to 30 s) instead of failing, and every write transaction
  starts with `BEGIN IMMEDIATE` so it takes the write lock up front and never has to upgrade
  a read snapshot (the one case a busy timeout cannot wait out). A residual SQLITE_BUSY (WAL
  recovery, a checkpoint race) is retried here, so no caller sees "database is locked".
- `synchronous=NORMAL` (the default) makes a commit durable against a crash of the process;
  `FULL` (`AX_DB_SYNC=full`) also against power loss, at the price of an fsync per commit.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from automatosx.errors import AxError
from automatosx.store.migrate import check_not_newer, load_migrations

BUSY_TIMEOUT_MS = 30_000
MMAP_BYTES = 256 * 1024 * 1024
BUSY_RETRY_SECONDS = 60.0
SYNCHRONOUS_MODES = ("normal", "full")
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
T = TypeVar("T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


def is_full(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_FULL: the disk (or the database's page limit) has no room for the write."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_FULL)
    return "disk is full" in str(exc)


def retry_busy(action: Callable[[], T]) -> T:
    """Runs `action`, retrying while SQLite reports the database busy (bounded)."""
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    delay = 0.001
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def private_file(path: Path) -> None:
    """Creates `path` with mode 0600 if missing; tightens it and its -wal/-shm otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
            if mode & 0o077:
                candidate.chmod(0o600)
        except (FileNotFoundError, PermissionError):
            pass


def connect(location: str, synchronous: str = "normal") -> sqlite3.Connection:
    """One connection in autocommit mode (the store issues BEGIN/COMMIT itself), migrated."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise AxError(
            f"AX_DB_SYNC must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}"
        )
    if location != ":memory:":
        try:
            private_file(Path(location))
        except OSError as exc:
            raise AxError(f"cannot open the database {location}: {exc.strerror or exc}") from exc
    try:
        conn = sqlite3.connect(
            location,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
            cached_statements=256,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchall())
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reads map the file (up to 256 MiB) instead of copying each page through read():
        # the statistics' pass over a large store's instances takes an eighth less.
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}").fetchall()
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise AxError(f"cannot open the database {location}: {exc}") from exc
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Applies missing migrations up to `target` (default: all) and returns the version."""
    migrations = load_migrations("sqlite")
    goal = migrations[-1].version if target is None else target
    current = retry_busy(lambda: schema_version(conn))
    check_not_newer(current, "sqlite")
    if current >= goal:
        return current
    retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = schema_version(conn)  # another process may have migrated meanwhile
        for migration in migrations:
            if current < migration.version <= goal:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                current = migration.version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current
