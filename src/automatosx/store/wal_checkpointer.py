"""Moving SQLite's WAL checkpoints (mostly) off the runner's commit path.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit then copies the pages into the database file and fsyncs both files, even with
`synchronous=NORMAL`. For a runner committing once per step this was the largest single
cost of a step (about half of it in a 1,000-step chain). A store that writes therefore turns
automatic checkpoints off on its own connection and instead:

- every `KICK_EVERY_COMMITS` commits, wakes a background thread with its own connection that
  runs a PASSIVE checkpoint: it copies what is committed so far while the runner goes on
  committing (SQLite releases the GIL while it works, so the engine's loop runs meanwhile);
- every `WRITER_EVERY_COMMITS` commits, runs a PASSIVE checkpoint itself, between two
  transactions (and again every few commits until one copies every frame, if the thread or
  a reader was in the way). The thread has usually copied nearly everything by then, so
  this finishes a short tail; and once everything is copied, the next write starts the WAL
  file over. This keeps the WAL bounded even when the thread is starved (a busy machine, a
  tight loop).

With `synchronous=FULL` every commit fsyncs the WAL, and an fsync of a commit that grows the
WAL file costs about twice one that overwrites frames of a WAL started over (the new file
size goes through the filesystem's journal too): with the thresholds above, half the commits
of a 1,000-step chain grew the file. The WAL only starts over once a checkpoint copied every
frame, so in FULL mode the writer checkpoints itself every `FULL_WRITER_EVERY_COMMITS`
commits and the thread is not used: the WAL stays a few dozen commits long and, after the
first cycle, commits overwrite it in place. (Chain in FULL mode 0.64 -> 0.56 ms/step,
interleaved medians; NORMAL mode, where commits do not fsync, keeps the thread.)

Durability is unchanged: a checkpoint only moves committed pages from the WAL into the
database file; a commit is durable (per the `synchronous` setting) once it is in the WAL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

KICK_EVERY_COMMITS = 64
WRITER_EVERY_COMMITS = 512
WRITER_RETRY_COMMITS = 8
FULL_WRITER_EVERY_COMMITS = 64


class WalCheckpointer:
    def __init__(self, location: str, *, full_sync: bool = False) -> None:
        self._location = location
        self._full_sync = full_sync
        self._commits = 0
        self._writer_due_at: int | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def note_commit(self, writer: sqlite3.Connection) -> None:
        """Called by the store after each write transaction, with its connection (outside
        any transaction, under the store's lock)."""
        self._commits += 1
        writer_every = FULL_WRITER_EVERY_COMMITS if self._full_sync else WRITER_EVERY_COMMITS
        if self._commits % writer_every == 0:
            self._writer_due_at = self._commits
        if self._writer_due_at is not None:
            if self._commits >= self._writer_due_at and self._writer_checkpoint(writer):
                self._writer_due_at = None
            elif self._commits >= self._writer_due_at:  # the thread or a reader was in the way
                self._writer_due_at = self._commits + WRITER_RETRY_COMMITS
            return  # no background checkpoint meanwhile: it would be in the writer's way
        if not self._full_sync and self._commits % KICK_EVERY_COMMITS == 0:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ax-wal-checkpointer", daemon=True
                )
                self._thread.start()
            self._wake.set()

    @staticmethod
    def _writer_checkpoint(writer: sqlite3.Connection) -> bool:
        """A PASSIVE checkpoint on the writer's connection; True if it copied every frame
        (then the next write transaction starts the WAL file over)."""
        try:
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            return False
        return not busy and copied >= frames

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
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                with contextlib.suppress(sqlite3.Error):  # busy: the next kick tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
