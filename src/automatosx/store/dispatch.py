"""Named SQL for attempts dispatched to other workers (`workflow_dispatched_attempts`,
migration 013; PostgreSQL, beside procrastinate's queue, `store.queue_jobs`).

The driver inserts the row and defers its job in one transaction (`dispatch_attempt`); the
worker whose job it is claims the row (`claim_dispatch`: it becomes the row's `worker`,
also when it takes over a job whose worker went silent), answers it (`answer_dispatch`:
only the current worker's answer counts, so a frozen one's late answer is refused), and the
driver reads the answers it waits for (`dispatch_answers`). Cancelling (`cancel_dispatch`)
marks the row and asks procrastinate to abort the job, which cancels the task running it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from automatosx.store.queue_jobs import DEFER_JOB

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

ATTEMPT_TASK = "automatosx.attempt"  # the worker's task that runs one dispatched attempt

INSERT = (
    "INSERT INTO workflow_dispatched_attempts (id, execution_id, step_key, attempt, "
    "queue_name, call, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)"
)
SET_JOB = "UPDATE workflow_dispatched_attempts SET job_id = ? WHERE id = ?"
# Only while its step still waits for this attempt: a job retried after its driver died
# too finds the attempt interrupted (or a later one running) and does nothing.
CLAIM = (
    "UPDATE workflow_dispatched_attempts d SET state = 'running', worker = ?, started_at = ? "
    "WHERE d.id = ? AND d.state IN ('queued', 'running') AND EXISTS (SELECT 1 FROM "
    "workflow_step_instances i WHERE i.execution_id = d.execution_id AND i.key = d.step_key "
    "AND i.attempt = d.attempt AND i.state = 'running') RETURNING d.call"
)
ANSWERED_CHANNEL = "ax_dispatch_answered"  # NOTIFY payload: the dispatch ID
NOTIFY_ANSWERED = f"SELECT pg_notify('{ANSWERED_CHANNEL}', ?)"
ANSWER = (
    "UPDATE workflow_dispatched_attempts SET state = 'done', outcome = ?, call = NULL, "
    "finished_at = ? WHERE id = ? AND state = 'running' AND worker = ?"
)
CANCEL = (
    "UPDATE workflow_dispatched_attempts SET state = 'cancelled', call = NULL, finished_at = ? "
    "WHERE id = ? AND state IN ('queued', 'running') RETURNING job_id"
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
REQUEUE = "UPDATE workflow_dispatched_attempts SET state = 'queued', worker = NULL WHERE id = ?"


class _Transactional(Protocol):
    def _transaction(self) -> AbstractContextManager[Connection]: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


class DispatchQueries:
    """Mixed into `SqlStore`: the dispatched-attempt methods of the `Store` protocol."""

    def dispatch_attempt(
        self: _Transactional,
        dispatch_id: str,
        *,
        execution_id: str,
        step_key: str,
        attempt: int,
        queue_name: str,
        call: dict[str, Any],
        priority: int,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                INSERT,
                (dispatch_id, execution_id, step_key, attempt, queue_name, json.dumps(call),
                 time.time()),
            )  # fmt: skip
            _defer(db, dispatch_id, queue_name, priority)

    def redefer_dispatches(self: _Transactional) -> int:
        """A new job for each dispatch still awaited whose job will not run (stopped by a
        draining worker, or failed); how many."""
        with self._transaction() as db:
            rows = db.execute(WITHOUT_JOB).fetchall()
            for dispatch_id, queue_name, priority in rows:
                db.execute(REQUEUE, (dispatch_id,))
                _defer(db, dispatch_id, queue_name, int(priority))
        return len(rows)

    def claim_dispatch(
        self: _Transactional, dispatch_id: str, worker: str
    ) -> dict[str, Any] | None:
        """The call to make, now this worker's; None if it was answered or cancelled."""
        with self._transaction() as db:
            row = db.execute(CLAIM, (worker, time.time(), dispatch_id)).fetchone()
            if row is None:  # its step no longer waits for it: nobody ever will
                db.execute(STALE, (time.time(), dispatch_id))
        if row is None or row[0] is None:
            return None
        call: dict[str, Any] = json.loads(row[0])
        return call

    def answer_dispatch(
        self: _Transactional, dispatch_id: str, worker: str, outcome: dict[str, Any]
    ) -> bool:
        """Record the outcome if this worker still runs the attempt (True if recorded)."""
        with self._transaction() as db:
            cursor = db.execute(ANSWER, (json.dumps(outcome), time.time(), dispatch_id, worker))
            if cursor.rowcount != 1:
                return False
            db.execute(NOTIFY_ANSWERED, (dispatch_id,))  # delivered when this commits
            return True

    def dispatch_answers(self: _Transactional, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The outcomes recorded for these dispatches (the others are still out)."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._fetch_all(
            "SELECT id, outcome FROM workflow_dispatched_attempts "
            f"WHERE id IN ({marks}) AND state = 'done'",
            list(ids),
        )
        return {row[0]: json.loads(row[1]) for row in rows}

    def cancel_dispatch(self: _Transactional, dispatch_id: str) -> None:
        """Nobody waits for it any more: marked, and its job aborted wherever it runs."""
        with self._transaction() as db:
            row = db.execute(CANCEL, (time.time(), dispatch_id)).fetchone()
            if row is not None and row[0] is not None:
                db.execute(ABORT_JOB, (int(row[0]),))

    def cancel_dispatches(self: _Transactional, execution_id: str) -> int:
        """Every attempt of the execution still out, as a new runner takes it over (their
        runner is gone: nobody will record their answers). How many there were."""
        with self._transaction() as db:
            rows = db.execute(CANCEL_ALL, (time.time(), execution_id)).fetchall()
            for (job_id,) in rows:
                if job_id is not None:
                    db.execute(ABORT_JOB, (int(job_id),))
        return len(rows)


def _defer(db: Connection, dispatch_id: str, queue_name: str, priority: int) -> None:
    args = json.dumps({"dispatch_id": dispatch_id})
    row = db.execute(DEFER_JOB, (queue_name, ATTEMPT_TASK, priority, None, args)).fetchone()
    db.execute(SET_JOB, (int(row[0][0]), dispatch_id))
