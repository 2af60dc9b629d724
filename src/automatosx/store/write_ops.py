"""Applying the fenced write operations (`records.WriteOp`) inside an open transaction.

The caller has already checked the lease epoch in the same transaction; these functions only
translate each operation into one or two portable SQL statements (`?` placeholders, which the
PostgreSQL store rewrites). Every value passes through the codec, so secrets never reach disk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from automatosx.store.codec import ColumnCodec
from automatosx.store.records import (
    TERMINAL_STATES,
    AppendEvent,
    ClearControlRequest,
    CreateCheckpoint,
    FinishStepAttempt,
    IncrementResumeCount,
    SetContext,
    SetExecutionState,
    StartStepAttempt,
    WriteOp,
)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the store logic needs from a connection: `execute` with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...


SET_EXECUTION_STATE = (
    "UPDATE workflow_executions SET state = ?, error = ?, started_at = COALESCE(started_at, ?), "
    "completed_at = ?, updated_at = ? WHERE id = ?"
)
SET_CONTEXT = "UPDATE workflow_executions SET context = ?, updated_at = ? WHERE id = ?"
START_STEP = (
    "INSERT INTO workflow_step_executions "
    "(execution_id, step_key, attempt, state, agent, provider, started_at) "
    "VALUES (?, ?, ?, 'running', ?, ?, ?) "
    "ON CONFLICT (execution_id, step_key, attempt) DO UPDATE SET state = 'running', "
    "agent = excluded.agent, provider = excluded.provider, started_at = excluded.started_at, "
    "completed_at = NULL, duration_ms = NULL, output = NULL, error_kind = NULL, "
    "error_message = NULL"
)
FINISH_STEP = (
    "UPDATE workflow_step_executions SET state = ?, completed_at = ?, output = ?, "
    "error_kind = ?, error_message = ?, provider = COALESCE(?, provider), "
    "model = COALESCE(?, model), tokens_in = ?, tokens_out = ?, cost_usd = ?, "
    "duration_ms = CAST(ROUND((? - started_at) * 1000) AS INTEGER) "
    "WHERE execution_id = ? AND step_key = ? AND attempt = ?"
)
RECORD_UNSTARTED_STEP = (
    "INSERT INTO workflow_step_executions (execution_id, step_key, attempt, state, provider, "
    "model, output, error_kind, error_message, completed_at, tokens_in, tokens_out, cost_usd) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
APPEND_EVENT = (
    "INSERT INTO workflow_events (execution_id, type, step_key, data, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
CREATE_CHECKPOINT = (
    "INSERT INTO workflow_checkpoints (id, execution_id, state, context, completed_steps, "
    "pending_steps, label, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INCREMENT_RESUME_COUNT = (
    "UPDATE workflow_executions SET resume_count = resume_count + 1, updated_at = ? WHERE id = ?"
)
CLEAR_CONTROL_REQUEST = (
    "UPDATE workflow_executions SET control_request = NULL, updated_at = ? WHERE id = ?"
)


def _set_state(db: Connection, eid: str, op: SetExecutionState, c: ColumnCodec, now: float) -> None:
    at = now if op.at is None else op.at
    started = None if op.state == "idle" else at
    completed = at if op.state in TERMINAL_STATES else None
    db.execute(SET_EXECUTION_STATE, (op.state, c.text(op.error), started, completed, now, eid))


def _set_context(db: Connection, eid: str, op: SetContext, c: ColumnCodec, now: float) -> None:
    db.execute(SET_CONTEXT, (c.json(op.context), now, eid))


def _start_step(db: Connection, eid: str, op: StartStepAttempt, c: ColumnCodec, now: float) -> None:
    db.execute(START_STEP, (eid, op.step_key, op.attempt, op.agent, op.provider, op.started_at))


def _finish_step(
    db: Connection, eid: str, op: FinishStepAttempt, c: ColumnCodec, now: float
) -> None:
    output = None if op.output is None else c.json(op.output)
    message = c.text(op.error_message)
    changed = db.execute(
        FINISH_STEP,
        (
            op.state, op.completed_at, output, op.error_kind, message, op.provider, op.model,
            op.tokens_in, op.tokens_out, op.cost_usd, op.completed_at,
            eid, op.step_key, op.attempt,
        ),
    ).rowcount  # fmt: skip
    if changed == 0:  # a step that never started (skipped, or cancelled while waiting)
        db.execute(
            RECORD_UNSTARTED_STEP,
            (
                eid, op.step_key, op.attempt, op.state, op.provider, op.model, output,
                op.error_kind, message, op.completed_at, op.tokens_in, op.tokens_out,
                op.cost_usd,
            ),
        )  # fmt: skip


def _append_event(db: Connection, eid: str, op: AppendEvent, c: ColumnCodec, now: float) -> None:
    at = now if op.at is None else op.at
    db.execute(APPEND_EVENT, (eid, op.type, op.step_key, c.json(op.data), at))


def _checkpoint(db: Connection, eid: str, op: CreateCheckpoint, c: ColumnCodec, now: float) -> None:
    db.execute(
        CREATE_CHECKPOINT,
        (
            str(uuid.uuid4()), eid, op.state, c.json(op.context), c.json(op.completed_steps),
            c.json(op.pending_steps), c.text(op.label), op.created_by, now,
        ),
    )  # fmt: skip


def _resumed(
    db: Connection, eid: str, op: IncrementResumeCount, c: ColumnCodec, now: float
) -> None:
    db.execute(INCREMENT_RESUME_COUNT, (now, eid))


def _clear(db: Connection, eid: str, op: ClearControlRequest, c: ColumnCodec, now: float) -> None:
    db.execute(CLEAR_CONTROL_REQUEST, (now, eid))


_APPLY: dict[type[Any], Callable[[Connection, str, Any, ColumnCodec, float], None]] = {
    SetExecutionState: _set_state,
    SetContext: _set_context,
    StartStepAttempt: _start_step,
    FinishStepAttempt: _finish_step,
    AppendEvent: _append_event,
    CreateCheckpoint: _checkpoint,
    IncrementResumeCount: _resumed,
    ClearControlRequest: _clear,
}


EVENTS_PER_STATEMENT = 64
_EVENT_ROWS = "(?, ?, ?, ?, ?)"
_APPEND_EVENTS: dict[int, str] = {}


def _append_events(db: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Inserts event rows in order, up to `EVENTS_PER_STATEMENT` per multi-row INSERT: a
    step's two events cost one statement, a burst of a thousand completions sixteen."""
    for start in range(0, len(rows), EVENTS_PER_STATEMENT):
        chunk = rows[start : start + EVENTS_PER_STATEMENT]
        sql = _APPEND_EVENTS.get(len(chunk))
        if sql is None:
            values = ", ".join([_EVENT_ROWS] * len(chunk))
            sql = _APPEND_EVENTS[len(chunk)] = APPEND_EVENT.replace(_EVENT_ROWS, values)
        db.execute(sql, [value for row in chunk for value in row])


def apply_ops(
    db: Connection, execution_id: str, ops: Sequence[WriteOp], codec: ColumnCodec, now: float
) -> None:
    """Applies `ops` in one transaction; an unknown operation type is a programming error.

    Events are inserted last, together, in their order: nothing reads between the
    statements of one transaction, so the result is the same as applying them in place,
    and their IDs still follow the order of the operations."""
    events: list[tuple[Any, ...]] = []
    for op in ops:
        if type(op) is AppendEvent:
            at = now if op.at is None else op.at
            events.append((execution_id, op.type, op.step_key, codec.json(op.data), at))
            continue
        try:
            apply = _APPLY[type(op)]
        except KeyError:
            raise TypeError(f"not a store write operation: {op!r}") from None
        apply(db, execution_id, op, codec, now)
    if events:
        _append_events(db, events)
