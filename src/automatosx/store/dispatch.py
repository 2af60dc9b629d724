"""Named SQL for attempts dispatched to the workers (`workflow_dispatched_attempts`,
migration 013; PostgreSQL, beside procrastinate's queue, `store.queue_jobs`).

The turn that starts an attempt stores its row and defers its job in the turn's own
transaction (`defer_attempt`); the worker whose job it is claims the row (`claim_dispatch`:
it becomes the row's `worker`, also when it takes over a job whose worker went silent) and
answers it in the turn that records the outcome (`store.turns.TurnSession.answer`: only the
current worker's answer counts, so a frozen one's late answer is refused). A turn that ends
the execution marks what is still out cancelled and asks procrastinate to abort the jobs
(`TurnSession.cancel_dispatches`), which cancels the tasks running them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from automatosx.store.queue_jobs import DEFERRED_JOB_ID, job_parameters

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

ATTEMPT_TASK = "automatosx.attempt"  # the worker's task that runs one dispatched attempt

# The row and its job in one statement.
INSERT_WITH_JOB = (
    "INSERT INTO workflow_dispatched_attempts (id, execution_id, step_key, attempt, "
    "queue_name, call, state, created_at, job_id) SELECT ?, ?, ?, ?, ?, ?, 'queued', ?, "
    + DEFERRED_JOB_ID
)
# Only while its step still waits for this attempt: a job retried after the execution moved
# on finds the attempt cancelled (or a later one running) and does nothing.
# One statement: the row as it was (`before`, the worker that had claimed it) and as it is.
CLAIM = (
    "UPDATE workflow_dispatched_attempts d SET state = 'running', worker = ?, started_at = ? "
    "FROM (SELECT id, worker FROM workflow_dispatched_attempts WHERE id = ? FOR UPDATE) before "
    "WHERE d.id = before.id AND d.state IN ('queued', 'running') AND EXISTS (SELECT 1 FROM "
    "workflow_step_instances i WHERE i.execution_id = d.execution_id AND i.key = d.step_key "
    "AND i.attempt = d.attempt AND i.state = 'running') "
    "RETURNING d.call, d.execution_id, before.worker"
)
STALE = (
    "UPDATE workflow_dispatched_attempts SET state = 'cancelled', call = NULL, finished_at = ? "
    "WHERE id = ? AND state IN ('queued', 'running')"
)
CANCEL_ALL = (
    "UPDATE workflow_dispatched_attempts SET state = 'cancelled', call = NULL, finished_at = ? "
    "WHERE execution_id = ? AND state IN ('queued', 'running') RETURNING job_id"
)
ABORT_JOB = "SELECT procrastinate_cancel_job_v1(?, true, false)"
# Dispatches still awaited whose job will not run: a worker stopped it while draining, or it
# failed. They get a new job (`redefer_dispatches`).
WITHOUT_JOB = (
    "SELECT d.id, d.queue_name, e.priority FROM workflow_dispatched_attempts d "
    "JOIN workflow_executions e ON e.id = d.execution_id "
    "WHERE d.state IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
    "WHERE j.id = d.job_id AND j.status IN ('todo', 'doing')) FOR UPDATE OF d SKIP LOCKED"
)
# Queued again with a new job; `worker` stays: whoever claims it next knows the attempt was
# cut off (a new attempt).
REQUEUE_WITH_JOB = (
    f"UPDATE workflow_dispatched_attempts SET state = 'queued', job_id = {DEFERRED_JOB_ID} "
    "WHERE id = ?"
)
# A draining worker stopped the attempt: cut off, but not lost (it counts for no
# `worker_lost`, `store.turns.ANSWER`).
RELEASE = (
    "UPDATE workflow_dispatched_attempts SET outcome = 'released' "
    "WHERE id = ? AND state = 'running' AND worker = ?"
)


@dataclass(frozen=True)
class Claim:
    """A claimed attempt: its execution, the call to make, and the worker that had claimed
    it before and went silent or was stopped (None: this is its first run)."""

    execution_id: str
    call: dict[str, Any]
    lost_from: str | None = None


class _Transactional(Protocol):
    def _transaction(self) -> AbstractContextManager[Connection]: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


class DispatchQueries:
    """Mixed into `SqlStore`: the dispatched-attempt methods of the `Store` protocol."""

    def redefer_dispatches(self: _Transactional) -> int:
        """A new job for each dispatch still awaited whose job will not run (stopped by a
        draining worker, or failed); how many."""
        with self._transaction() as db:
            rows = db.execute(WITHOUT_JOB).fetchall()
            for dispatch_id, queue_name, priority in rows:
                job = _job_of(dispatch_id, queue_name, int(priority))
                db.execute(REQUEUE_WITH_JOB, (*job, dispatch_id))
        return len(rows)

    def release_dispatch(self: _Transactional, dispatch_id: str, worker: str) -> None:
        """The worker stopped the attempt while draining (SIGTERM): the attempt it was
        running is handed on, and its loss does not count against the step."""
        with self._transaction() as db:
            db.execute(RELEASE, (dispatch_id, worker))

    def claim_dispatch(self: _Transactional, dispatch_id: str, worker: str) -> Claim | None:
        """The attempt, now this worker's; None if it was answered or cancelled, or its
        step no longer waits for it. One statement, committed on its own (no transaction
        around it: a step's claim is two round trips fewer)."""
        rows = self._fetch_all(CLAIM, (worker, time.time(), dispatch_id))
        row = rows[0] if rows else None
        if row is None:  # its step no longer waits for it: nobody ever will
            with self._transaction() as db:
                db.execute(STALE, (time.time(), dispatch_id))
        if row is None or row[0] is None:
            return None
        lost = row[2] if row[2] is not None and row[2] != worker else None
        return Claim(str(row[1]), json.loads(row[0]), lost)


def defer_attempt(
    db: Connection,
    dispatch_id: str,
    *,
    execution_id: str,
    step_key: str,
    attempt: int,
    queue_name: str,
    call: dict[str, Any],
    priority: int,
) -> None:
    """Store the attempt's call and defer its job on `queue_name`, on `db`."""
    db.execute(
        INSERT_WITH_JOB,
        (dispatch_id, execution_id, step_key, attempt, queue_name, json.dumps(call), time.time(),
         *_job_of(dispatch_id, queue_name, priority)),
    )  # fmt: skip


def _job_of(dispatch_id: str, queue_name: str, priority: int) -> tuple[Any, ...]:
    """The attempt job's parameters (`DEFERRED_JOB_ID`): the dispatch on its queue, now."""
    return job_parameters(queue_name, ATTEMPT_TASK, priority, {"dispatch_id": dispatch_id}, None)
