"""Applying the fenced write operations (`records.WriteOp`) inside an open transaction.

The caller has already checked the lease epoch in the same transaction; these functions only
translate each operation into one or two portable SQL statements (`?` placeholders, which the
PostgreSQL store rewrites). Every value passes through the codec, so secrets never reach disk.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from automatosx.store.cache import apply_cache_ops
from automatosx.store.children import create_child, set_subworkflows
from automatosx.store.codec import ColumnCodec
from automatosx.store.queue_jobs import submit
from automatosx.store.records import (
    TERMINAL_STATES,
    AppendEvent,
    ClearControlRequest,
    CreateCheckpoint,
    CreateChildExecution,
    IncrementResumeCount,
    OpenApproval,
    PutCacheEntry,
    PutInstance,
    RecordAttempt,
    RecordCacheHit,
    RecordCriticalPath,
    SetContext,
    SetExecutionState,
    SetIdleUntil,
    SetSubworkflows,
    StepInstanceRecord,
    SubmitToWorkers,
    WriteOp,
)
from automatosx.store.rows import INSTANCE_COLUMNS
from automatosx.store.stats import STEP_RUN_MS, longest_chain_ms


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
_INSTANCE_ROW = "(" + ", ".join("?" * len(INSTANCE_COLUMNS.split(", "))) + ")"
PUT_INSTANCES = (
    f"INSERT INTO workflow_step_instances ({INSTANCE_COLUMNS}) VALUES {_INSTANCE_ROW} "
    "ON CONFLICT (execution_id, key) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}"
        for column in INSTANCE_COLUMNS.split(", ")
        if column not in ("execution_id", "key")
    )
)
RECORD_ATTEMPT = (
    "INSERT INTO workflow_step_executions (execution_id, step_key, attempt, state, agent, "
    "provider, model, error_kind, error_message, started_at, completed_at, duration_ms, "
    "tokens_in, tokens_out, cost_usd, prompt) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (execution_id, step_key, attempt) DO UPDATE SET state = excluded.state, "
    "agent = COALESCE(excluded.agent, workflow_step_executions.agent), "
    "provider = COALESCE(excluded.provider, workflow_step_executions.provider), "
    "prompt = COALESCE(excluded.prompt, workflow_step_executions.prompt), "
    "model = excluded.model, error_kind = excluded.error_kind, "
    "error_message = excluded.error_message, "
    "started_at = COALESCE(excluded.started_at, workflow_step_executions.started_at), "
    "completed_at = excluded.completed_at, duration_ms = excluded.duration_ms, "
    "tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out, "
    "cost_usd = excluded.cost_usd"
)
APPEND_EVENT = (
    "INSERT INTO workflow_events (execution_id, type, step_key, data, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
CREATE_CHECKPOINT = (
    "INSERT INTO workflow_checkpoints (id, execution_id, state, context, completed_steps, "
    "pending_steps, label, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RECORD_CHECKPOINT_WRITE = "UPDATE workflow_checkpoints SET write_ms = ? WHERE id = ?"
INCREMENT_RESUME_COUNT = (
    "UPDATE workflow_executions SET resume_count = resume_count + 1, updated_at = ? WHERE id = ?"
)
CLEAR_CONTROL_REQUEST = (
    "UPDATE workflow_executions SET control_request = NULL, updated_at = ? WHERE id = ?"
)


def _set_state(db: Connection, eid: str, op: SetExecutionState, c: ColumnCodec, now: float) -> None:
    at = now if op.at is None else op.at
    started = None if op.state in ("idle", "queued") else at  # a worker has not begun it
    completed = at if op.state in TERMINAL_STATES else None
    db.execute(SET_EXECUTION_STATE, (op.state, c.text(op.error), started, completed, now, eid))


def _set_context(db: Connection, eid: str, op: SetContext, c: ColumnCodec, now: float) -> None:
    db.execute(SET_CONTEXT, (c.json(op.context), now, eid))


def _record_attempt(
    db: Connection, eid: str, op: RecordAttempt, c: ColumnCodec, now: float
) -> None:
    a = op.attempt
    duration = None
    if a.started_at is not None and a.completed_at is not None:
        duration = round((a.completed_at - a.started_at) * 1000)
    db.execute(
        RECORD_ATTEMPT,
        (
            eid, a.step_key, a.attempt, a.state, a.agent, a.provider, a.model, a.error_kind,
            c.text(a.error_message), a.started_at, a.completed_at, duration, a.tokens_in,
            a.tokens_out, a.cost_usd, c.text(a.prompt),
        ),
    )  # fmt: skip


_UPDATE_INSTANCE: dict[tuple[str, ...], str] = {}
# A new instance (nothing ran yet) has values in these columns only; the rest keep their
# defaults. Storing 6 columns instead of 24 halves creating a 10,000-step execution.
_FRESH_COLUMNS = ("execution_id", "key", "step_key", "position", "state", "agent")
_FRESH_ROW = "(?, ?, ?, ?, ?, ?)"
_DEFAULTS = {
    "parent_key": None, "item_index": None, "attempt": 0, "failures": 0, "provider": None,
    "model": None, "output": None, "error_kind": None, "error_message": None,
    "started_at": None, "completed_at": None, "duration_ms": None, "retry_at": None,
    "tokens_in": None, "tokens_out": None, "cost_usd": None, "skip_reason": None,
    "items": None, "child_execution_id": None, "cached": False, "cached_from": None,
    "saved_usd": None, "prompt": None,
}  # fmt: skip
INSERT_FRESH_INSTANCES = (
    f"INSERT INTO workflow_step_instances ({', '.join(_FRESH_COLUMNS)}) VALUES {_FRESH_ROW} "
    "ON CONFLICT (execution_id, key) DO UPDATE SET step_key = excluded.step_key, "
    "position = excluded.position, state = excluded.state, agent = excluded.agent, "
    + ", ".join(
        f"{column} = {'0' if value == 0 else 'NULL'}" for column, value in _DEFAULTS.items()
    )
)


def _put_instances(
    db: Connection, eid: str, puts: Iterable[PutInstance], codec: ColumnCodec
) -> None:
    """Known records: an UPDATE of the columns that changed (none: nothing to do). New
    ones, or ones whose row is missing: multi-row upserts of the whole record."""
    whole: list[tuple[Any, ...]] = []
    fresh: list[tuple[Any, ...]] = []
    for put in puts:
        new, old = put.instance, put.previous
        if old is None or old.key != new.key:
            fields = new.__dict__
            if all(fields[name] == default for name, default in _DEFAULTS.items()):
                fresh.append((eid, new.key, new.step_key, new.position, new.state, new.agent))
            else:
                whole.append(_instance_row(eid, new, codec))
            continue
        before = old.__dict__
        after = new.__dict__
        changed = tuple([name for name in after if after[name] != before[name]])
        if not changed:
            continue
        sql = _UPDATE_INSTANCE.get(changed)
        if sql is None:
            assignments = ", ".join(f"{name} = ?" for name in changed)
            sql = _UPDATE_INSTANCE[changed] = (
                f"UPDATE workflow_step_instances SET {assignments} "
                "WHERE execution_id = ? AND key = ?"
            )
        values = [after[name] for name in changed]
        if "output" in changed:
            output = after["output"]
            values[changed.index("output")] = None if output is None else codec.json(output)
        if "items" in changed:
            items = after["items"]
            values[changed.index("items")] = None if items is None else codec.json(items)
        if "error_message" in changed:
            values[changed.index("error_message")] = codec.text(after["error_message"])
        if "prompt" in changed:
            values[changed.index("prompt")] = codec.text(after["prompt"])
        if "cached" in changed:
            values[changed.index("cached")] = int(after["cached"])
        values += (eid, new.key)
        if db.execute(sql, values).rowcount == 0:
            whole.append(_instance_row(eid, new, codec))
    if fresh:
        _insert_rows(db, INSERT_FRESH_INSTANCES, _FRESH_ROW, fresh)
    if whole:
        _insert_rows(db, PUT_INSTANCES, _INSTANCE_ROW, whole)


def _instance_row(eid: str, i: StepInstanceRecord, c: ColumnCodec) -> tuple[Any, ...]:
    output = None if i.output is None else c.json(i.output)
    return (
        eid, i.key, i.step_key, i.position, i.state, i.parent_key, i.item_index, i.attempt,
        i.failures, i.agent, i.provider, i.model, output, i.error_kind, c.text(i.error_message),
        i.started_at, i.completed_at, i.duration_ms, i.retry_at, i.tokens_in, i.tokens_out,
        i.cost_usd, i.skip_reason, None if i.items is None else c.json(i.items),
        i.child_execution_id, int(i.cached), i.cached_from, i.saved_usd, c.text(i.prompt),
    )  # fmt: skip


def _checkpoint(db: Connection, eid: str, op: CreateCheckpoint, c: ColumnCodec, now: float) -> None:
    """The snapshot, then how long encoding and inserting it took (`write_ms`, what
    `ax workflow stats` reports as checkpoint overhead; the commit is shared with the
    write's other changes and is not counted)."""
    began = time.perf_counter()
    checkpoint_id = str(uuid.uuid4())
    db.execute(
        CREATE_CHECKPOINT,
        (
            checkpoint_id, eid, op.state, c.json(op.context), c.json(op.completed_steps),
            c.json(op.pending_steps), c.text(op.label), op.created_by, now,
        ),
    )  # fmt: skip
    spent_ms = (time.perf_counter() - began) * 1000
    db.execute(RECORD_CHECKPOINT_WRITE, (spent_ms, checkpoint_id))


def _resumed(
    db: Connection, eid: str, op: IncrementResumeCount, c: ColumnCodec, now: float
) -> None:
    db.execute(INCREMENT_RESUME_COUNT, (now, eid))


SET_IDLE_UNTIL = "UPDATE workflow_executions SET idle_until = ? WHERE id = ?"


def _idle_until(db: Connection, eid: str, op: SetIdleUntil, c: ColumnCodec, now: float) -> None:
    db.execute(SET_IDLE_UNTIL, (op.until, eid))


def _submit(db: Connection, eid: str, op: SubmitToWorkers, c: ColumnCodec, now: float) -> None:
    submit(db, eid, op.priority)


def _clear(db: Connection, eid: str, op: ClearControlRequest, c: ColumnCodec, now: float) -> None:
    db.execute(CLEAR_CONTROL_REQUEST, (now, eid))


# A gate that opens again (never today: a waiting gate stays waiting across a resume) asks
# afresh: no decision given to an earlier request carries over.
OPEN_APPROVAL = (
    "INSERT INTO workflow_approvals (execution_id, step_key, message, requested_at, "
    "expires_at, on_timeout) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id, step_key) "
    "DO UPDATE SET message = excluded.message, requested_at = excluded.requested_at, "
    "expires_at = excluded.expires_at, on_timeout = excluded.on_timeout, decision = NULL, "
    "decided_by = NULL, comment = NULL, decided_at = NULL"
)


RECORD_CRITICAL_PATH = "UPDATE workflow_executions SET critical_path_ms = ? WHERE id = ?"


def record_critical_path(db: Connection, eid: str, op: RecordCriticalPath) -> None:
    run_ms = {key: int(ms) for key, ms in db.execute(STEP_RUN_MS, (eid,)).fetchall()}
    db.execute(RECORD_CRITICAL_PATH, (longest_chain_ms(op.dependencies, run_ms), eid))


def _open_approval(db: Connection, eid: str, op: OpenApproval, c: ColumnCodec, now: float) -> None:
    db.execute(
        OPEN_APPROVAL,
        (eid, op.step_key, c.text(op.message), op.requested_at, op.expires_at, op.on_timeout),
    )


_APPLY: dict[type[Any], Callable[[Connection, str, Any, ColumnCodec, float], None]] = {
    SetExecutionState: _set_state,
    SetContext: _set_context,
    RecordAttempt: _record_attempt,
    CreateCheckpoint: _checkpoint,
    IncrementResumeCount: _resumed,
    SubmitToWorkers: _submit,
    SetIdleUntil: _idle_until,
    ClearControlRequest: _clear,
    OpenApproval: _open_approval,
    CreateChildExecution: create_child,
    SetSubworkflows: set_subworkflows,
}


ROWS_PER_STATEMENT = 64
_EVENT_ROW = "(?, ?, ?, ?, ?)"
_MULTI_ROW: dict[tuple[str, int], str] = {}


def _insert_rows(db: Connection, sql: str, row: str, rows: list[tuple[Any, ...]]) -> None:
    """Runs the single-row statement `sql` for every row, up to `ROWS_PER_STATEMENT` rows
    per multi-row statement: a step's two events cost one statement, a burst of a thousand
    completions sixteen; the same for instance records."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        statement = _MULTI_ROW.get((sql, len(chunk)))
        if statement is None:
            values = ", ".join([row] * len(chunk))
            statement = _MULTI_ROW[(sql, len(chunk))] = sql.replace(row, values, 1)
        db.execute(statement, [value for entry in chunk for value in entry])


def apply_ops(
    db: Connection, execution_id: str, ops: Sequence[WriteOp], codec: ColumnCodec, now: float
) -> None:
    """Applies `ops` in one transaction; an unknown operation type is a programming error.

    Instance records and events are written last, together, each in their order: nothing
    reads between the statements of one transaction, so the result is the same as applying
    them in place, and event IDs still follow the order of the operations. Of several
    records of one instance, the last one stands (as applying them in order would leave it;
    PostgreSQL refuses one statement that changes a row twice). The critical path, which
    reads those rows, is written after them."""
    events: list[tuple[Any, ...]] = []
    instances: dict[str, PutInstance] = {}
    cache_ops: list[PutCacheEntry | RecordCacheHit] = []
    critical_path: RecordCriticalPath | None = None
    for op in ops:
        kind = type(op)
        if kind is PutCacheEntry or kind is RecordCacheHit:
            cache_ops.append(op)  # type: ignore[arg-type]
            continue
        if kind is RecordCriticalPath:
            critical_path = op  # type: ignore[assignment]
            continue
        if kind is AppendEvent:
            at = now if op.at is None else op.at  # type: ignore[union-attr]
            event = op.event  # type: ignore[union-attr]
            events.append((execution_id, event.type, event.step_key, codec.json(event.data()), at))
            continue
        if kind is PutInstance:
            put: PutInstance = op  # type: ignore[assignment]
            key = put.instance.key
            earlier = instances.pop(key, None)
            if earlier is not None:  # one change after another: from the first's previous
                put = PutInstance(put.instance, earlier.previous)
            instances[key] = put
            continue
        try:
            apply = _APPLY[type(op)]
        except KeyError:
            raise TypeError(f"not a store write operation: {op!r}") from None
        apply(db, execution_id, op, codec, now)
    if instances:
        _put_instances(db, execution_id, instances.values(), codec)
    if events:
        _insert_rows(db, APPEND_EVENT, _EVENT_ROW, events)
    if critical_path is not None:  # reads the instance rows written above
        record_critical_path(db, execution_id, critical_path)
    if cache_ops:  # rows shared by executions: last, in key order (store/cache.py)
        apply_cache_ops(db, cache_ops, codec)
