"""Starting, resuming, pausing and cancelling executions: the operations behind the CLI.

Each returns (or drives) an `ExecutionRunner`, or acts on the store directly when no runner
is alive: pausing or cancelling an execution whose runner died takes its lease over (which
bumps the fencing epoch) and writes the new state itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, get_args

from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.validation import validate_document
from automatosx.errors import StateConflictError
from automatosx.runtime.checkpoints import pause_ops
from automatosx.runtime.context import check_context
from automatosx.runtime.engine import CommitObserver, ExecutionRunner
from automatosx.runtime.lease import (
    is_orphaned,
    lease_is_live,
    lease_seconds,
    new_owner,
    owner_is_dead,
)
from automatosx.runtime.preparation import PreparedWorkflow, prepare_workflow
from automatosx.runtime.progress import ExecutionProgress
from automatosx.runtime.recovery import INTERRUPTED_MESSAGE, RecoveredProgress, recover_progress
from automatosx.store.base import Store
from automatosx.store.records import (
    TERMINAL_STATES,
    AppendEvent,
    ClearControlRequest,
    ExecutionRecord,
    ExecutionState,
    FinishStepAttempt,
    IncrementResumeCount,
    Lease,
    SetExecutionState,
    StepExecutionRecord,
    WriteOp,
)

# Unfinished and not paused: what a runner may have been driving when it died.
ACTIVE_STATES: tuple[ExecutionState, ...] = tuple(
    state for state in get_args(ExecutionState) if state not in TERMINAL_STATES | {"paused"}
)


def start_execution(
    store: Store,
    prepared: PreparedWorkflow,
    *,
    context: dict[str, Any],
    triggered_by: str = "cli",
    priority: int = 0,
    on_commit: CommitObserver | None = None,
) -> ExecutionRunner:
    """Record a new execution (leased to this process) and the runner that will drive it."""
    definition = prepared.definition
    check_context(definition, context)
    seconds = lease_seconds()
    workflow = store.upsert_workflow(definition)
    _, lease = store.create_execution(
        workflow_id=workflow.id,
        context=context,
        triggered_by=triggered_by,
        priority=priority,
        owner=new_owner(),
        lease_seconds=seconds,
    )
    now = time.time()
    config = definition.config
    opening: list[WriteOp] = [
        SetExecutionState("executing", None, now),
        AppendEvent(
            "workflow_started",
            None,
            {
                "workflowName": definition.name,
                "version": definition.version,
                "triggeredBy": triggered_by,
                "priority": priority,
                "steps": len(definition.steps),
                "parallelism": config.parallelism,
                "owner": lease.owner,
            },
            now,
        ),
    ]
    return _runner(store, lease, prepared, context, opening, seconds, on_commit)


def stored_definition(store: Store, execution: ExecutionRecord) -> WorkflowDefinition:
    """The definition the execution started with (each execution keeps its own copy): a
    workflow is stored by (name, version), so an edited file run later under the same
    version must not change the steps a paused or orphaned execution resumes."""
    return validate_document(store.execution_definition(execution.id))


def resume_execution(
    store: Store,
    id_or_prefix: str,
    *,
    prepare: Callable[[WorkflowDefinition], PreparedWorkflow] = prepare_workflow,
    on_commit: CommitObserver | None = None,
) -> ExecutionRunner:
    """Take over a paused or orphaned execution and return the runner that continues it."""
    execution = store.get_execution(id_or_prefix)
    if execution.is_terminal:
        raise StateConflictError(
            f"execution {execution.id} is {execution.state}: there is nothing to resume"
        )
    if execution.state != "paused" and lease_is_live(execution):
        raise StateConflictError(running_message(execution))
    prepared = prepare(stored_definition(store, execution))
    seconds = lease_seconds()
    lease = take_over(store, execution, seconds)
    records = store.list_step_executions(execution.id)
    recovered = recover_progress(prepared.definition, records)
    checkpoint = store.latest_checkpoint(execution.id)
    now = time.time()
    opening: list[WriteOp] = [IncrementResumeCount(), ClearControlRequest()]
    opening.extend(close_interrupted(recovered, now))
    opening.append(
        AppendEvent(
            "checkpoint_restored",
            None,
            {
                "checkpointId": checkpoint.id if checkpoint else None,
                "checkpointCreatedBy": checkpoint.created_by if checkpoint else None,
                "source": "step records",
                "completedSteps": len(recovered.outputs),
            },
            now,
        )
    )
    opening.append(
        AppendEvent(
            "workflow_resumed",
            None,
            {
                "resumeCount": execution.resume_count + 1,
                "previousState": execution.state,
                "previousOwner": execution.lease_owner,
                "owner": lease.owner,
                "rerunSteps": sorted(recovered.interrupted),
            },
            now,
        )
    )
    opening.append(SetExecutionState("executing", None, now))
    return _runner(
        store, lease, prepared, execution.context, opening, seconds, on_commit, recovered
    )


def close_interrupted(recovered: RecoveredProgress, now: float) -> list[WriteOp]:
    """Close the attempts a dead runner left `running` as cancelled ("interrupted"): nothing
    runs them any more, whoever takes the execution over (resume, or a direct pause)."""
    ops: list[WriteOp] = []
    for key, attempt in recovered.interrupted.items():
        ops.append(
            FinishStepAttempt(
                key,
                attempt,
                "cancelled",
                now,
                error_kind="cancelled",
                error_message=INTERRUPTED_MESSAGE,
            )
        )
        ops.append(
            AppendEvent(
                "step_cancelled", key, {"attempt": attempt, "reason": INTERRUPTED_MESSAGE}, now
            )
        )
    return ops


def _runner(
    store: Store,
    lease: Lease,
    prepared: PreparedWorkflow,
    context: dict[str, Any],
    opening: list[WriteOp],
    seconds: float,
    on_commit: CommitObserver | None,
    recovered: RecoveredProgress | None = None,
) -> ExecutionRunner:
    """The runner of a new or resumed execution, starting with its `opening` operations."""
    progress = ExecutionProgress(
        execution_id=lease.execution_id,
        definition=prepared.definition,
        graph=prepared.graph,
        plans=prepared.plans,
        context=context,
        recovered=recovered,
        workdir=prepared.workdir,
    )
    return ExecutionRunner(
        store=store,
        lease=lease,
        progress=progress,
        runner=prepared.router,
        opening_ops=opening,
        lease_seconds=seconds,
        on_commit=on_commit,
    )


def take_over(store: Store, execution: ExecutionRecord, seconds: float) -> Lease:
    """Acquire the execution's lease; a lease still held by a dead process on this host is
    treated as expired. Raises StateConflictError if another live runner holds it (for two
    racing takeovers, the store lets exactly one win)."""
    now = time.time()
    expires = execution.lease_expires_at
    if execution.lease_owner and expires and expires > now and owner_is_dead(execution.lease_owner):
        now = expires + 0.001
    return store.acquire_lease(execution.id, new_owner(), seconds, now=now)


def running_message(execution: ExecutionRecord) -> str:
    remaining = max(0.0, (execution.lease_expires_at or 0) - time.time())
    return (
        f"execution {execution.id} is running (its runner {execution.lease_owner} holds the "
        f"lease for another {remaining:.0f}s); pause or cancel it first"
    )


def cancel_execution(store: Store, id_or_prefix: str, *, wait_s: float = 10.0) -> ExecutionRecord:
    """Cancel: ask a live runner (and wait for it to stop), or cancel directly."""
    execution = store.get_execution(id_or_prefix)
    if execution.is_terminal:
        raise StateConflictError(f"execution {execution.id} is already {execution.state}")
    if not lease_is_live(execution):
        try:
            lease = take_over(store, execution, lease_seconds())
        except StateConflictError:
            execution = store.get_execution(execution.id)
            if execution.is_terminal:
                raise
        else:
            _cancel_directly(store, lease, execution)
            return store.get_execution(execution.id)
    store.request_control(execution.id, "cancel")
    return wait_for(store, execution.id, lambda e: e.is_terminal, wait_s)


def _cancel_directly(store: Store, lease: Lease, execution: ExecutionRecord) -> None:
    now = time.time()
    ops: list[WriteOp] = []
    for record in latest_attempts(store.list_step_executions(execution.id)):
        if record.state == "running":
            reason = "workflow cancelled (its runner had stopped)"
            ops.append(
                FinishStepAttempt(
                    record.step_key,
                    record.attempt,
                    "cancelled",
                    now,
                    error_kind="cancelled",
                    error_message=reason,
                )
            )
            ops.append(
                AppendEvent(
                    "step_cancelled",
                    record.step_key,
                    {"attempt": record.attempt, "reason": reason},
                    now,
                )
            )
    reason = "cancelled by request"
    ops.append(SetExecutionState("cancelled", reason, now))
    ops.append(
        AppendEvent("workflow_cancelled", None, {"error": reason, "previous": execution.state}, now)
    )
    ops.append(ClearControlRequest())
    store.write(lease, ops)
    store.release_lease(lease)


def pause_execution(store: Store, id_or_prefix: str) -> ExecutionRecord:
    """Pause: ask a live runner (it stops at its next step boundary), or pause directly."""
    execution = store.get_execution(id_or_prefix)
    if execution.is_terminal or execution.state == "paused":
        raise StateConflictError(f"execution {execution.id} is {execution.state}: cannot pause")
    if not lease_is_live(execution):
        try:
            lease = take_over(store, execution, lease_seconds())
        except StateConflictError:
            execution = store.get_execution(execution.id)
            if execution.is_terminal or execution.state == "paused":
                raise
        else:
            _pause_directly(store, lease, execution)
            return store.get_execution(execution.id)
    return store.request_control(execution.id, "pause")


def _pause_directly(store: Store, lease: Lease, execution: ExecutionRecord) -> None:
    now = time.time()
    definition = stored_definition(store, execution)
    recovered = recover_progress(definition, store.list_step_executions(execution.id))
    completed = [s.key for s in definition.steps if s.key in recovered.outputs]
    settled = recovered.outputs.keys() | recovered.empty_steps | recovered.failed_steps.keys()
    pending = [
        s.key
        for s in definition.steps
        if s.key not in settled and s.key not in recovered.skipped_steps
    ]
    ops = close_interrupted(recovered, now)
    ops += pause_ops(
        context=execution.context,
        completed_steps=completed,
        pending_steps=pending,
        at=now,
        direct=True,
    )
    ops.append(ClearControlRequest())
    store.write(lease, ops)
    store.release_lease(lease)


def orphaned_executions(store: Store) -> list[ExecutionRecord]:
    """Unfinished, not paused, and nobody alive runs them: what `recover` resumes."""
    candidates = store.list_executions(limit=100_000, states=ACTIVE_STATES)
    now = time.time()
    return [e for e in reversed(candidates) if is_orphaned(e, now)]


def latest_attempts(records: list[StepExecutionRecord]) -> list[StepExecutionRecord]:
    latest: dict[str, StepExecutionRecord] = {}
    for record in records:
        current = latest.get(record.step_key)
        if current is None or record.attempt > current.attempt:
            latest[record.step_key] = record
    return list(latest.values())


def wait_for(
    store: Store, execution_id: str, done: Callable[[ExecutionRecord], bool], timeout_s: float
) -> ExecutionRecord:
    deadline = time.monotonic() + timeout_s
    execution = store.get_execution(execution_id)
    while not done(execution) and time.monotonic() < deadline:
        time.sleep(0.05)
        execution = store.get_execution(execution_id)
    return execution
