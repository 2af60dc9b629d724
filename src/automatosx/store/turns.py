"""Named SQL for a turn of a submitted execution (`runtime.turn`, SPEC section 9): one
PostgreSQL transaction that holds the execution's row lock (`SELECT ... FOR UPDATE`), so
turns of one execution, taken by any worker or shell, run one after another and each sees
everything the one before committed.

In that transaction a turn records an attempt's answer (only the current claimant's:
`ANSWER` is the fence a frozen worker's late answer meets), applies the operations the
turn function decided, stores each attempt it starts with that attempt's job (deferred
through procrastinate's own `procrastinate_defer_jobs_v1`, on the same connection), and
defers the turns still due: at once (a child that ended wakes its parent) or at a time (a
retry's backoff, a gate's deadline, the workflow timeout: `scheduled_at`). Nothing is
committed unless all of it is, so a crash between "what finished" and "what starts next"
cannot happen: there is no between.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from automatosx.errors import AxError, NotFoundError
from automatosx.store.approvals import APPROVAL_COLUMNS, EXPIRE, approval_from_row
from automatosx.store.codec import ColumnCodec
from automatosx.store.dispatch import ABORT_JOB, CANCEL_ALL, defer_attempt
from automatosx.store.queue_jobs import NEEDS_POSTGRES, TURN_TASK, defer_turn
from automatosx.store.rows import INSTANCE_COLUMNS, execution_from_row, instance_from_row
from automatosx.store.write_ops import apply_ops

if TYPE_CHECKING:
    from automatosx.store.records import (
        ApprovalRecord,
        ControlRequest,
        ExecutionRecord,
        StepInstanceRecord,
        WriteOp,
    )
    from automatosx.store.write_ops import Connection

LOCK_EXECUTION = " FOR UPDATE OF e"
# `outcome`: 'answered'; or 'lost', its worker went silent mid-call (`lost_attempts`),
# unless that worker drained and said so first ('released', `release_dispatch`)
ANSWER = (
    "UPDATE workflow_dispatched_attempts SET state = 'done', call = NULL, "
    "outcome = COALESCE(outcome, ?), finished_at = ? "
    "WHERE id = ? AND state = 'running' AND worker = ?"
)
LOST_ATTEMPTS = (
    "SELECT count(*) FROM workflow_dispatched_attempts "
    "WHERE execution_id = ? AND step_key = ? AND outcome = 'lost'"
)
INSTANCES = (
    f"SELECT {INSTANCE_COLUMNS} FROM workflow_step_instances WHERE execution_id = ? "
    "ORDER BY position, COALESCE(item_index, -1)"
)
WAITING_APPROVALS = (
    f"SELECT {APPROVAL_COLUMNS} FROM workflow_approvals a JOIN workflow_step_instances i "
    "ON i.execution_id = a.execution_id AND i.key = a.step_key AND i.state = 'waiting' "
    "WHERE a.execution_id = ? ORDER BY a.requested_at, a.step_key"
)
LAST_CHECKPOINT = "SELECT MAX(created_at) FROM workflow_checkpoints WHERE execution_id = ?"
LAST_RESUMED = (
    "SELECT created_at FROM workflow_events WHERE execution_id = ? "
    "AND type = 'workflow_resumed' ORDER BY id DESC LIMIT 1"
)
SET_CONTROL = (
    "UPDATE workflow_executions SET control_request = ?, updated_at = ? WHERE id = ? "
    "AND state NOT IN ('completed', 'failed', 'cancelled') "
    "AND (control_request IS NULL OR control_request <> 'cancel')"
)
REQUEUE_PAUSED = (
    "UPDATE workflow_executions SET state = 'queued', updated_at = ? "
    "WHERE id = ? AND state = 'paused' AND queue_name IS NOT NULL"
)
PRIORITY = "SELECT priority FROM workflow_executions WHERE id = ?"
# Executing, and nothing will give them a turn: no attempt out, no child running, no gate
# waiting for a person, no turn job waiting, due or running (a turn job that failed).
UNATTENDED = (
    "SELECT e.id, e.priority FROM workflow_executions e WHERE e.queue_name IS NOT NULL "
    "AND e.state IN ('queued', 'executing') AND NOT EXISTS (SELECT 1 FROM "
    "workflow_dispatched_attempts d WHERE d.execution_id = e.id AND d.state IN ('queued', "
    "'running')) AND NOT EXISTS (SELECT 1 FROM workflow_step_instances i WHERE "
    "i.execution_id = e.id AND (i.state = 'waiting' OR (i.state = 'running' AND "
    "i.child_execution_id IS NOT NULL))) AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
    "WHERE j.task_name = ? AND j.status IN ('todo', 'doing') AND j.args ->> 'execution_id' = e.id)"
)


class TurnSession:
    """The open transaction of one turn, with the execution as locked."""

    def __init__(self, db: Connection, execution: ExecutionRecord, codec: ColumnCodec) -> None:
        self.db = db
        self.execution = execution
        self.codec = codec

    def answer(self, dispatch_id: str, worker: str, *, lost: bool = False) -> bool:
        """Close the dispatch if this worker is still its claimant (True); a frozen
        worker's late answer, or one for a cancelled attempt, is refused. `lost`: there is
        no answer, the worker that ran it before went silent."""
        outcome = "lost" if lost else "answered"
        cursor = self.db.execute(ANSWER, (outcome, time.time(), dispatch_id, worker))
        return cursor.rowcount == 1

    def lost_attempts(self, step_key: str) -> int:
        """How many of the instance's attempts lost their worker mid-call."""
        row = self.db.execute(LOST_ATTEMPTS, (self.execution.id, step_key)).fetchone()
        return int(row[0])

    def instances(self) -> list[StepInstanceRecord]:
        rows = self.db.execute(INSTANCES, (self.execution.id,)).fetchall()
        return [instance_from_row(row) for row in rows]

    def waiting_approvals(self, now: float) -> list[ApprovalRecord]:
        """The gates that wait, after each whose deadline passed by `now` records its
        `onTimeout` decision (unless a person decided first: the first decision stays)."""
        eid = self.execution.id
        found = [
            approval_from_row(r) for r in self.db.execute(WAITING_APPROVALS, (eid,)).fetchall()
        ]
        expired = [
            a
            for a in found
            if a.decision is None and a.expires_at is not None and a.expires_at <= now
        ]
        for approval in expired:
            self.db.execute(EXPIRE, (eid, approval.step_key, now, eid, approval.step_key))
        if not expired:
            return found
        return [approval_from_row(r) for r in self.db.execute(WAITING_APPROVALS, (eid,)).fetchall()]

    def last_checkpoint_at(self) -> float | None:
        row = self.db.execute(LAST_CHECKPOINT, (self.execution.id,)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def last_resumed_at(self) -> float | None:
        """When the execution was last resumed (None: never)."""
        row = self.db.execute(LAST_RESUMED, (self.execution.id,)).fetchone()
        return None if row is None else float(row[0])

    def executions(self, ids: Sequence[str]) -> list[ExecutionRecord]:
        from automatosx.store.sql_store import SELECT_EXECUTION

        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self.db.execute(f"{SELECT_EXECUTION} WHERE e.id IN ({marks})", list(ids)).fetchall()
        return [execution_from_row(row) for row in rows]

    def write(self, ops: Sequence[WriteOp], *, execution_id: str | None = None) -> None:
        """Apply operations to the execution (or to `execution_id`: a child it created)."""
        if ops:
            apply_ops(self.db, execution_id or self.execution.id, ops, self.codec, time.time())

    def dispatch(
        self,
        dispatch_id: str,
        *,
        step_key: str,
        attempt: int,
        queue_name: str,
        call: dict[str, Any],
    ) -> None:
        """An attempt starts: stored for its worker, with its job on `queue_name`."""
        defer_attempt(
            self.db,
            dispatch_id,
            execution_id=self.execution.id,
            step_key=step_key,
            attempt=attempt,
            queue_name=queue_name,
            call=call,
            priority=self.execution.priority,
        )

    def cancel_dispatches(self) -> int:
        """Every attempt of the execution still out: marked, and their jobs aborted
        wherever they run (procrastinate cancels the task, which kills the step's process
        group). How many there were."""
        rows = self.db.execute(CANCEL_ALL, (time.time(), self.execution.id)).fetchall()
        for (job_id,) in rows:
            if job_id is not None:
                self.db.execute(ABORT_JOB, (int(job_id),))
        return len(rows)

    def wake(self, execution_id: str | None = None, *, at: float | None = None) -> None:
        """A turn of the execution (or of another: a parent, a child) at once or at `at`."""
        eid = execution_id or self.execution.id
        priority = self.execution.priority
        if eid != self.execution.id:
            row = self.db.execute(PRIORITY, (eid,)).fetchone()
            priority = int(row[0]) if row is not None else priority
        defer_turn(self.db, eid, priority, at)

    def request_control(self, execution_id: str, request: ControlRequest) -> bool:
        """Ask another execution (a child) to pause or cancel (a cancel is never
        downgraded), and give it a turn to act on it. False if it ended."""
        changed = self.db.execute(SET_CONTROL, (request, time.time(), execution_id)).rowcount
        if changed:
            self.wake(execution_id)
        return changed == 1

    def requeue_paused(self, execution_id: str) -> None:
        """A paused child its parent resumes: `queued` again (its turn: `wake`)."""
        self.db.execute(REQUEUE_PAUSED, (time.time(), execution_id))


class _Transactional(Protocol):
    codec: ColumnCodec

    @property
    def dialect(self) -> str: ...

    def _transaction(self) -> AbstractContextManager[Connection]: ...


class TurnQueries:
    """Mixed into `SqlStore`: the turn methods of the `Store` protocol (PostgreSQL)."""

    @contextmanager
    def turn_session(self: _Transactional, execution_id: str) -> Iterator[TurnSession]:
        """The execution locked for one turn; everything done through the session commits
        together when the block ends (or nothing does, if it raises)."""
        from automatosx.store.sql_store import SELECT_EXECUTION

        if self.dialect != "postgres":
            raise AxError(NEEDS_POSTGRES)
        with self._transaction() as db:
            row = db.execute(
                f"{SELECT_EXECUTION} WHERE e.id = ?{LOCK_EXECUTION}", (execution_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with ID {execution_id!r}")
            yield TurnSession(db, execution_from_row(row), self.codec)

    def wake_execution(
        self: _Transactional, execution_id: str, *, requeue_paused: bool = False
    ) -> bool:
        """A turn for a submitted execution, unless one waits already (True: deferred);
        with `requeue_paused`, a paused one is `queued` again first (`resume`)."""
        if self.dialect != "postgres":
            raise AxError(NEEDS_POSTGRES)
        with self._transaction() as db:
            if requeue_paused:
                db.execute(REQUEUE_PAUSED, (time.time(), execution_id))
            row = db.execute(PRIORITY, (execution_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with ID {execution_id!r}")
            return defer_turn(db, execution_id, int(row[0]))

    def wake_unattended(self: _Transactional) -> int:
        """A turn for each submitted execution nothing will give one (`UNATTENDED`); how
        many got one."""
        if self.dialect != "postgres":
            raise AxError(NEEDS_POSTGRES)
        with self._transaction() as db:
            rows = db.execute(UNATTENDED, (TURN_TASK,)).fetchall()
            for execution_id, priority in rows:
                defer_turn(db, execution_id, int(priority))
        return len(rows)
