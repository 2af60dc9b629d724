"""The columns each query selects and how a row becomes a record (shared by both stores).

Queries select exactly these columns in this order, so a row is a plain tuple and both
dialects map it the same way; JSON columns arrive as text (see `codec`).
"""

from __future__ import annotations

from typing import Any

from automatosx.store.codec import load_json
from automatosx.store.records import (
    CheckpointRecord,
    EventRecord,
    ExecutionRecord,
    StepExecutionRecord,
    StepInstanceRecord,
    WorkflowRecord,
)

WORKFLOW_COLUMNS = (
    "w.id, w.name, w.version, w.description, w.author, w.tags, w.definition, w.created_at, "
    "w.updated_at, w.total_executions, w.successful_executions, w.failed_executions, "
    "w.avg_duration_ms"
)
EXECUTION_COLUMNS = (
    "e.id, e.workflow_id, w.name, e.state, e.context, e.triggered_by, e.priority, e.created_at, "
    "e.started_at, e.completed_at, e.duration_ms, e.resume_count, e.error, "
    "e.parent_execution_id, e.lease_owner, e.lease_expires_at, e.lease_epoch, e.control_request, "
    "e.workdir, e.queue_name, e.idle_until"
)
EXECUTION_FROM = "workflow_executions e JOIN workflows w ON w.id = e.workflow_id"
STEP_COLUMNS = (
    "execution_id, step_key, attempt, state, agent, provider, model, output, error_kind, "
    "error_message, started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_usd, "
    "prompt"
)
INSTANCE_COLUMNS = (
    "execution_id, key, step_key, position, state, parent_key, item_index, attempt, failures, "
    "agent, provider, model, output, error_kind, error_message, started_at, completed_at, "
    "duration_ms, retry_at, tokens_in, tokens_out, cost_usd, skip_reason, items, "
    "child_execution_id, cached, cached_from, saved_usd, prompt"
)
CHECKPOINT_COLUMNS = (
    "id, execution_id, state, context, completed_steps, pending_steps, label, created_by, "
    "created_at, size_bytes"
)
EVENT_COLUMNS = "id, execution_id, type, step_key, data, created_at"


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def workflow_from_row(row: Any) -> WorkflowRecord:
    return WorkflowRecord(
        id=row[0],
        name=row[1],
        version=row[2],
        description=row[3],
        author=row[4],
        tags=load_json(row[5]) or [],
        definition=load_json(row[6]),
        created_at=float(row[7]),
        updated_at=float(row[8]),
        total_executions=int(row[9]),
        successful_executions=int(row[10]),
        failed_executions=int(row[11]),
        avg_duration_ms=_opt_float(row[12]),
    )


def execution_from_row(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=row[0],
        workflow_id=row[1],
        workflow_name=row[2],
        state=row[3],
        context=load_json(row[4]) or {},
        triggered_by=row[5],
        priority=int(row[6]),
        created_at=float(row[7]),
        started_at=_opt_float(row[8]),
        completed_at=_opt_float(row[9]),
        duration_ms=_opt_int(row[10]),
        resume_count=int(row[11]),
        error=row[12],
        parent_execution_id=row[13],
        lease_owner=row[14],
        lease_expires_at=_opt_float(row[15]),
        lease_epoch=int(row[16]),
        control_request=row[17],
        workdir=row[18],
        queue_name=row[19],
        idle_until=_opt_float(row[20]),
    )


def step_from_row(row: Any) -> StepExecutionRecord:
    return StepExecutionRecord(
        execution_id=row[0],
        step_key=row[1],
        attempt=int(row[2]),
        state=row[3],
        agent=row[4],
        provider=row[5],
        model=row[6],
        output=load_json(row[7]),
        error_kind=row[8],
        error_message=row[9],
        started_at=_opt_float(row[10]),
        completed_at=_opt_float(row[11]),
        duration_ms=_opt_int(row[12]),
        tokens_in=_opt_int(row[13]),
        tokens_out=_opt_int(row[14]),
        cost_usd=_opt_float(row[15]),
        prompt=row[16],
    )


def instance_from_row(row: Any) -> StepInstanceRecord:
    return StepInstanceRecord.from_fields(
        {
            "execution_id": row[0],
            "key": row[1],
            "step_key": row[2],
            "position": int(row[3]),
            "state": row[4],
            "parent_key": row[5],
            "item_index": _opt_int(row[6]),
            "attempt": int(row[7]),
            "failures": int(row[8]),
            "agent": row[9],
            "provider": row[10],
            "model": row[11],
            "output": load_json(row[12]),
            "error_kind": row[13],
            "error_message": row[14],
            "started_at": _opt_float(row[15]),
            "completed_at": _opt_float(row[16]),
            "duration_ms": _opt_int(row[17]),
            "retry_at": _opt_float(row[18]),
            "tokens_in": _opt_int(row[19]),
            "tokens_out": _opt_int(row[20]),
            "cost_usd": _opt_float(row[21]),
            "skip_reason": row[22],
            "items": load_json(row[23]),
            "child_execution_id": row[24],
            "cached": bool(row[25]),
            "cached_from": row[26],
            "saved_usd": _opt_float(row[27]),
            "prompt": row[28],
        }
    )


def checkpoint_from_row(row: Any) -> CheckpointRecord:
    return CheckpointRecord(
        id=row[0],
        execution_id=row[1],
        state=row[2],
        context=load_json(row[3]) or {},
        completed_steps=load_json(row[4]) or [],
        pending_steps=load_json(row[5]) or [],
        label=row[6],
        created_by=row[7],
        created_at=float(row[8]),
        size_bytes=int(row[9]),
    )


def event_from_row(row: Any) -> EventRecord:
    return EventRecord(
        id=int(row[0]),
        execution_id=row[1],
        type=row[2],
        step_key=row[3],
        data=load_json(row[4]) or {},
        created_at=float(row[5]),
    )
