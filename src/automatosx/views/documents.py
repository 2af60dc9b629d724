"""The list documents of SPEC section 7: `list`, `runs`, `events` and `checkpoints` entries.

Beyond the contract's keys, a run carries `orphaned` (its state says it is running, but its
runner is gone: `ax workflow recover` or `resume` continues it) and `parentExecutionId`
(the execution whose sub-workflow step started it; null at the top).
"""

from __future__ import annotations

from typing import Any

from automatosx.store.liveness import is_orphaned
from automatosx.store.records import CheckpointRecord, EventRecord, ExecutionRecord, WorkflowRecord
from automatosx.views.timestamps import iso


def workflow_document(workflow: WorkflowRecord) -> dict[str, Any]:
    rate = workflow.success_rate
    average = workflow.avg_duration_ms
    return {
        "name": workflow.name,
        "version": workflow.version,
        "description": workflow.description,
        "totalExecutions": workflow.total_executions,
        "successfulExecutions": workflow.successful_executions,
        "successRate": None if rate is None else round(rate, 4),
        "avgDurationMs": None if average is None else round(average),
    }


def run_document(execution: ExecutionRecord) -> dict[str, Any]:
    return {
        "executionId": execution.id,
        **run_fields(execution),
        "orphaned": is_orphaned(execution),
    }


def run_fields(execution: ExecutionRecord) -> dict[str, Any]:
    """What a `runs` entry and the `status` document both say about an execution."""
    return {
        "workflowName": execution.workflow_name,
        "state": execution.state,
        "triggeredBy": execution.triggered_by,
        "priority": execution.priority,
        "startedAt": iso(execution.started_at),
        "completedAt": iso(execution.completed_at),
        "durationMs": execution.duration_ms,
        "parentExecutionId": execution.parent_execution_id,  # null at the top
    }


def event_document(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "executionId": event.execution_id,
        "type": event.type,
        "stepKey": event.step_key,
        "data": event.data,
        "createdAt": iso(event.created_at),
    }


def checkpoint_document(checkpoint: CheckpointRecord) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "executionId": checkpoint.execution_id,
        "state": checkpoint.state,
        "label": checkpoint.label,
        "createdBy": checkpoint.created_by,
        "createdAt": iso(checkpoint.created_at),
        "sizeBytes": checkpoint.size_bytes,
        "completedSteps": checkpoint.completed_steps,
        "pendingSteps": checkpoint.pending_steps,
    }
