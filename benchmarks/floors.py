"""Floors measured in the same run as the engine: what the hardware allows at best.

- one SQLite transaction shaped like the engine's per-step write (finish an attempt, start the
  next, two events), done directly with `sqlite3`, at each durability setting;
- a round trip to a worker thread: handing a no-op to a waiting thread and getting its result
  back, with the cheapest primitives there are (C-level queue and lock): the least a sync
  `python` callable's hand-off can cost, since it must not run on the engine's loop;
- `python -c pass`: the interpreter's own start-up, the floor for `ax --version`;
- a fixed pure-Python loop: not a floor of ax but a gauge of how fast this (shared, noisy)
  machine is during the run, so figures of different runs can be put side by side.
"""

from __future__ import annotations

import _thread
import queue
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE steps (id INTEGER PRIMARY KEY, execution_id TEXT, step_key TEXT, attempt INTEGER,
                    state TEXT, output TEXT, started_at REAL, completed_at REAL);
CREATE TABLE events (id INTEGER PRIMARY KEY, execution_id TEXT, type TEXT, step_key TEXT,
                     data TEXT, created_at REAL);
CREATE INDEX events_by_execution ON events (execution_id, id);
"""


def sqlite_step_commit_ms(journal: str, synchronous: str, steps: int = 2000) -> float:
    """Milliseconds per step for the engine's per-step transaction, done directly."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute(f"PRAGMA journal_mode={journal}")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(SCHEMA)
        db.execute(
            "INSERT INTO steps (execution_id, step_key, attempt, state, started_at) "
            "VALUES ('e', 's0', 1, 'running', 0)"
        )
        start = time.perf_counter()
        for i in range(1, steps + 1):
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE steps SET state='completed', output=?, completed_at=? "
                "WHERE execution_id='e' AND step_key=? AND attempt=1",
                ('"ok"', now, f"s{i - 1}"),
            )
            db.execute(
                "INSERT INTO events (execution_id, type, step_key, data, created_at) "
                "VALUES ('e', 'step_completed', ?, '{}', ?)",
                (f"s{i - 1}", now),
            )
            db.execute(
                "INSERT INTO steps (execution_id, step_key, attempt, state, started_at) "
                "VALUES ('e', ?, 1, 'running', ?)",
                (f"s{i}", now),
            )
            db.execute(
                "INSERT INTO events (execution_id, type, step_key, data, created_at) "
                "VALUES ('e', 'step_started', ?, '{}', ?)",
                (f"s{i}", now),
            )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    return elapsed * 1000 / steps


def thread_round_trip_ms(calls: int = 5000, repeat: int = 3) -> float:
    """Median milliseconds for a persistent worker thread to run a no-op and hand it back."""
    jobs: queue.SimpleQueue[_thread.LockType | None] = queue.SimpleQueue()

    def work() -> None:
        while (done := jobs.get()) is not None:
            done.release()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            done = _thread.allocate_lock()
            done.acquire()
            jobs.put(done)
            done.acquire()
        times.append((time.perf_counter() - start) * 1000 / calls)
    jobs.put(None)
    worker.join()
    return statistics.median(times)


def python_startup_s(repeat: int = 7) -> float:
    """Median wall time of `python -c pass` with this interpreter."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_loop_ms(repeat: int = 5) -> float:
    """Median milliseconds of `sum(range(1_000_000))`: the machine's speed right now."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sum(range(1_000_000))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure() -> dict[str, float]:
    return {
        "python_loop_1e6_ms": python_loop_ms(),
        "sqlite_commit_wal_normal_ms": sqlite_step_commit_ms("wal", "normal"),
        "sqlite_commit_wal_full_ms": sqlite_step_commit_ms("wal", "full"),
        "sqlite_commit_rollback_full_ms": sqlite_step_commit_ms("delete", "full", steps=500),
        "thread_round_trip_ms": thread_round_trip_ms(),
        "python_startup_s": python_startup_s(),
    }


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:34s} {value:.4f}")
