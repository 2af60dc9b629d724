"""Moving SQLite's WAL checkpoints off the runner's commit path.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit then copies the pages into the database file and fsyncs both files, even with
`synchronous=NORMAL`. For a runner committing once per step this was the largest single
cost of a step (about half of it in a 1,000-step chain). A store that writes therefore turns
automatic checkpoints off on its own connection and asks this background thread, which has
its own connection, to checkpoint every `KICK_EVERY_COMMITS` commits:

- a PASSIVE checkpoint copies what is committed so far while the runner keeps committing
  (SQLite releases the GIL while it works, so the engine's loop runs meanwhile);
- once the WAL holds more than `RESTART_FRAMES` frames, a RESTART checkpoint copies the short
  tail and lets the next writer start the WAL file over, so it stays bounded. It holds the
  write lock for that tail only, and gives up after `BUSY_TIMEOUT_MS` if a reader is in the
  way (it tries again later).

Durability is unchanged: a checkpoint only moves committed pages from the WAL into the
database file; a commit is durable (per the `synchronous` setting) once it is in the WAL.
"""

from __future__ import annotations

import sqlite3
import threading

KICK_EVERY_COMMITS = 128
RESTART_FRAMES = 4096  # 16 MB of 4 KB pages
BUSY_TIMEOUT_MS = 100


class WalCheckpointer:
    def __init__(self, location: str) -> None:
        self._location = location
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def note_commit(self) -> None:
        """Called after each write transaction; wakes the thread every few commits."""
        self._commits += 1
        if self._commits % KICK_EVERY_COMMITS == 0:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ax-wal-checkpointer", daemon=True
                )
                self._thread.start()
            self._wake.set()

    def stop(self) -> None:
        """Stop the thread (before the store closes its connection, so that the last
        connection to close is the store's and SQLite's final checkpoint happens there)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(
                self._location, isolation_level=None, check_same_thread=False, timeout=0
            )
        except sqlite3.Error:
            return  # the store's own connection will checkpoint when it closes
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                self._checkpoint(conn)
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= RESTART_FRAMES:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error:
            pass  # busy or interrupted: the next kick tries again
