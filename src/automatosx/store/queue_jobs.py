"""Named SQL for the job queue `ax worker` processes share (SPEC section 9): procrastinate's
tables, in the store's own PostgreSQL schema, so a job is deferred in the transaction that
records what it is for (an execution submitted, an attempt started, a turn due) and can
never be lost or doubled by a crash between two commits.

A job is deferred through procrastinate's own SQL function (`procrastinate_defer_jobs_v1`,
its stable interface), never by writing its tables. Turn jobs carry no procrastinate
`lock`: the execution's row lock orders its turns (`store.turns`), and a lock would make a
turn scheduled for later hold back every turn after it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

TURN_TASK = "automatosx.turn"  # the worker's task that takes one turn of an execution
TURN_QUEUE = "ax-executions"  # every worker takes these

# A job deferred, as an SQL value: its ID. Parameters: queue, task, priority, the args as
# JSON, when (None: at once). Other statements embed it to defer a job and store its ID in
# one round trip (`store.dispatch`).
DEFERRED_JOB_ID = (
    "(procrastinate_defer_jobs_v1(ARRAY[ROW(?, ?, ?, NULL, NULL, CAST(? AS jsonb), "
    "CAST(? AS timestamptz))::procrastinate_job_to_defer_v1]))[1]"
)
DEFER_JOB = f"SELECT {DEFERRED_JOB_ID}"
# An immediate turn already waiting makes another one needless (a duplicate would only find
# nothing to do: turns are idempotent, so the check needs no lock).
TURN_WAITING = (
    "SELECT 1 FROM procrastinate_jobs WHERE queue_name = ? AND task_name = ? AND status = 'todo' "
    "AND args ->> 'execution_id' = ? AND (scheduled_at IS NULL OR scheduled_at <= now()) LIMIT 1"
)
MARK_SUBMITTED = "UPDATE workflow_executions SET queue_name = ? WHERE id = ?"


def defer_job(
    db: Connection, queue: str, task: str, priority: int, args: dict[str, Any], at: float | None
) -> int:
    """Defer one job through procrastinate's SQL interface; its ID."""
    row = db.execute(DEFER_JOB, job_parameters(queue, task, priority, args, at)).fetchone()
    return int(row[0])


def job_parameters(
    queue: str, task: str, priority: int, args: dict[str, Any], at: float | None
) -> tuple[Any, ...]:
    """The parameters of `DEFERRED_JOB_ID`, in its order."""
    when = None if at is None else datetime.fromtimestamp(at, UTC)
    return (queue, task, priority, json.dumps(args), when)


def defer_turn(db: Connection, execution_id: str, priority: int, at: float | None = None) -> bool:
    """A turn job for the execution: at once (unless one waits already; True if deferred)
    or at `at`."""
    if at is None:
        waiting = db.execute(TURN_WAITING, (TURN_QUEUE, TURN_TASK, execution_id)).fetchone()
        if waiting is not None:
            return False
    defer_job(db, TURN_QUEUE, TURN_TASK, priority, {"execution_id": execution_id}, at)
    return True


def submit(db: Connection, execution_id: str, priority: int) -> None:
    """The execution is the workers' from now on, and one of them takes its first turn."""
    db.execute(MARK_SUBMITTED, (TURN_QUEUE, execution_id))
    defer_turn(db, execution_id, priority)


NEEDS_POSTGRES = (
    "workers need PostgreSQL: set AX_DB=postgresql://USER@HOST/DATABASE (a SQLite store is "
    "for one process; `ax workflow run` runs a workflow in this one)"
)
