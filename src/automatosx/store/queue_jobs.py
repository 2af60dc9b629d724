"""Named SQL for the job queue `ax worker` processes share (SPEC section 9): procrastinate's
tables, in the store's own PostgreSQL schema, so a job is deferred in the transaction that
records what it is for (an execution submitted, or found without a runner) and can never be
lost or doubled by a crash between two commits.

A job is deferred through procrastinate's own SQL function (`procrastinate_defer_jobs_v1`,
its stable interface), never by writing its tables. Each execution has at most one drive
job waiting or running: its `lock` is the execution's, so procrastinate runs them one at a
time, and a new one is deferred only when none is `todo` or `doing`.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from automatosx.errors import AxError, NotFoundError

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

DRIVE_TASK = "automatosx.drive"  # the worker's task that runs one execution
DRIVE_QUEUE = "ax-executions"  # every worker takes these

DEFER_JOB = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(?, ?, ?, ?, NULL, CAST(? AS jsonb), NULL)"
    "::procrastinate_job_to_defer_v1])"
)
WAITING_OR_RUNNING = (
    "SELECT 1 FROM procrastinate_jobs WHERE lock = ? AND status IN ('todo', 'doing') LIMIT 1"
)
MARK_SUBMITTED = "UPDATE workflow_executions SET queue_name = ? WHERE id = ?"


def drive_lock(execution_id: str) -> str:
    return f"ax-drive:{execution_id}"


def defer_drive(db: Connection, execution_id: str, priority: int) -> bool:
    """A drive job for the execution, unless one waits or runs (True: one was deferred).
    Procrastinate claims higher priorities first, as `--priority` asks."""
    lock = drive_lock(execution_id)
    if db.execute(WAITING_OR_RUNNING, (lock,)).fetchone() is not None:
        return False
    args = json.dumps({"execution_id": execution_id})
    db.execute(DEFER_JOB, (DRIVE_QUEUE, DRIVE_TASK, priority, lock, args))
    return True


def submit(db: Connection, execution_id: str, priority: int) -> None:
    """The execution is the workers' from now on, and one of them will take it."""
    db.execute(MARK_SUBMITTED, (DRIVE_QUEUE, execution_id))
    defer_drive(db, execution_id, priority)


class _Transactional(Protocol):
    @property
    def dialect(self) -> str: ...

    def _transaction(self) -> AbstractContextManager[Connection]: ...


REQUEUE_PAUSED = (
    "UPDATE workflow_executions SET state = 'queued', updated_at = ? "
    "WHERE id = ? AND state = 'paused' AND queue_name IS NOT NULL"
)
PRIORITY = "SELECT priority FROM workflow_executions WHERE id = ?"


class QueueCommands:
    """Mixed into `SqlStore`: the job-queue methods of the `Store` protocol."""

    def enqueue_drive(
        self: _Transactional, execution_id: str, *, requeue_paused: bool = False
    ) -> bool:
        """A drive job for a submitted execution unless one waits or runs; with
        `requeue_paused`, a paused one is `queued` again first (`resume`). True when a job
        was deferred. Only PostgreSQL holds the queue."""
        if self.dialect != "postgres":
            raise AxError(NEEDS_POSTGRES)
        with self._transaction() as db:
            if requeue_paused:
                db.execute(REQUEUE_PAUSED, (time.time(), execution_id))
            row = db.execute(PRIORITY, (execution_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with ID {execution_id!r}")
            return defer_drive(db, execution_id, int(row[0]))


NEEDS_POSTGRES = (
    "workers need PostgreSQL: set AX_DB=postgresql://USER@HOST/DATABASE (a SQLite store is "
    "for one process; `ax workflow run` runs a workflow in this one)"
)
