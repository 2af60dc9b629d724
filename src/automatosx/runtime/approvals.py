"""Approval gates: a step that waits for a person (SPEC section 8, `approval:`).

    pending --request--> waiting --approved--> completed  {"approved": true, "by", ...}
                            |-------rejected--> failed    (kind `rejected`, never retried)
                            |-------cancel----> cancelled (the execution ends first)

A gate that opens moves to `waiting` and writes its `workflow_approvals` row (message,
absolute deadline) in the same fenced write. It holds no parallelism slot; the rest of the
DAG goes on. The decision is a compare-and-set on that row by whoever gives it (`decide`
below for `ax workflow approve|reject`, the deadline for `onTimeout`), so the first one
wins and works whether the runner is alive, paused or gone. Only the execution's runner
turns a recorded decision into the instance's end (`apply_decision`), under its lease, on
its next control tick or the first turn after a resume.

The transitions here are pure, like those of `transitions`: records in, operations out.
"""

from __future__ import annotations

from typing import Any

from automatosx.definition.models import ApprovalSpec
from automatosx.errors import StateConflictError, StepError
from automatosx.store.approvals import TIMEOUT_DECIDER, decision_command
from automatosx.store.base import Store, instance_of
from automatosx.store.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    StepCompleted,
    StepFailed,
    StepStarted,
)
from automatosx.store.records import (
    AppendEvent,
    ApprovalDecision,
    ApprovalRecord,
    ExecutionRecord,
    OpenApproval,
    PutInstance,
    StepInstanceRecord,
    WriteOp,
)
from automatosx.store.timestamps import iso

# ---- transitions ----


def request_approval(
    record: StepInstanceRecord, approval: ApprovalSpec, *, message: str, now: float
) -> list[WriteOp]:
    """The gate is ready: it waits, with its request (and its deadline, `now` plus
    `timeoutMs`, as an absolute time a restart keeps) stored beside it."""
    expires_at = None if approval.timeout_ms is None else now + approval.timeout_ms / 1000
    waiting = record.evolve(
        state="waiting",
        attempt=record.attempt + 1,
        agent=None,
        provider=None,
        model=None,
        error_kind=None,
        error_message=None,
        started_at=now,
        completed_at=None,
        duration_ms=None,
        retry_at=None,
    )
    execution_id, key = record.execution_id, record.key
    requested = ApprovalRequested(
        key,
        message,
        iso(expires_at),
        approval.on_timeout,
        decision_command("approve", execution_id, key),
        decision_command("reject", execution_id, key),
    )
    return [
        OpenApproval(key, message, now, expires_at, approval.on_timeout),
        PutInstance(waiting, record),
        AppendEvent(StepStarted(key, waiting.attempt, None), now),
        AppendEvent(requested, now),
    ]


def apply_decision(
    record: StepInstanceRecord, approval: ApprovalRecord, *, optional: bool, now: float
) -> tuple[list[WriteOp], StepError | None]:
    """A recorded decision ends the waiting gate: approved, it completes with the decision
    as its output; rejected, it fails for good with kind `rejected` (the error, returned,
    has a final failure's usual effects: `optional`, `continueOnError`)."""
    assert approval.decision is not None and approval.decided_by is not None
    at = iso(approval.decided_at if approval.decided_at is not None else now) or ""
    started = record.started_at if record.started_at is not None else now
    duration = round(max(0.0, now - started) * 1000)
    by, comment, key = approval.decided_by, approval.comment, record.key
    if approval.decision == "approved":
        output: dict[str, Any] = {"approved": True, "by": by, "comment": comment, "at": at}
        done = record.evolve(
            state="completed", output=output, completed_at=now, duration_ms=duration
        )
        return [
            PutInstance(done, record),
            AppendEvent(ApprovalGranted(key, by, comment, at), now),
            AppendEvent(StepCompleted(key, record.attempt, duration, None), now),
        ], None
    error = StepError("rejected", rejection_text(approval))
    failed = record.evolve(
        state="failed",
        failures=record.failures + 1,
        error_kind=error.kind,
        error_message=error.message,
        completed_at=now,
        duration_ms=duration,
    )
    step_failed = StepFailed(key, record.attempt, error.kind, error.message, duration, optional)
    return [
        PutInstance(failed, record),
        AppendEvent(ApprovalRejected(key, by, comment, at), now),
        AppendEvent(step_failed, now),
    ], error


def rejection_text(approval: ApprovalRecord) -> str:
    if approval.decided_by == TIMEOUT_DECIDER:
        return "rejected by timeout: no decision before its deadline (onTimeout: reject)"
    reason = f": {approval.comment}" if approval.comment else ""
    return f"rejected by {approval.decided_by}{reason}"


# ---- deciding, from any process ----


def decide(
    store: Store,
    id_or_prefix: str,
    key: str,
    decision: ApprovalDecision,
    *,
    by: str,
    comment: str | None,
    now: float,
) -> tuple[ExecutionRecord, ApprovalRecord]:
    """Record a person's decision on a waiting gate (`ax workflow approve|reject`); the
    execution's runner applies it (a paused or orphaned execution's, on `resume`). Raises
    NotFoundError for an unknown execution or step, StateConflictError when the execution
    has finished, the step is no gate or does not wait, or a decision was already given
    (the first one wins: of two racing deciders exactly one gets here without an error)."""
    execution = store.get_execution(id_or_prefix)
    instance = instance_of(store, execution, key)
    if not _is_gate(store, execution, instance):
        raise StateConflictError(
            f"step '{key}' of execution {execution.id} is not an approval: there is nothing "
            f"to {_verb(decision)}"
        )
    if not execution.is_terminal and store.decide_approval(
        execution.id, key, decision, by=by, comment=comment, now=now
    ):
        recorded = store.get_approval(execution.id, key)
        assert recorded is not None
        if execution.queue_name is not None:
            store.wake_execution(execution.id)  # a turn of the workers' applies it
        return execution, recorded
    raise _refusal(store, execution, key, decision, now)


def _is_gate(store: Store, execution: ExecutionRecord, instance: StepInstanceRecord) -> bool:
    """Whether the instance's step is an approval in the definition the execution runs."""
    steps = store.execution_definition(execution.id).get("steps", [])
    return any(s.get("key") == instance.step_key and s.get("approval") for s in steps)


def _refusal(
    store: Store, execution: ExecutionRecord, key: str, decision: ApprovalDecision, now: float
) -> StateConflictError:
    """Why no decision was recorded: one was already (by a person, or by the deadline,
    which is recorded now if nobody had), the execution has finished, or the gate does not
    wait."""
    approval = store.get_approval(execution.id, key)
    if (
        approval is not None
        and approval.decision is None
        and not execution.is_terminal
        and _expired(approval, now)
    ):
        store.expire_approval(execution.id, key, now=now)
        approval = store.get_approval(execution.id, key)
    if approval is not None and approval.decision is not None:
        return StateConflictError(
            f"step '{key}' of execution {execution.id} was already {approval.decision} by "
            f"{approval.decided_by} at {iso(approval.decided_at)}"
        )
    if execution.is_terminal:
        return StateConflictError(
            f"execution {execution.id} is {execution.state}: there is nothing to {_verb(decision)}"
        )
    state = instance_of(store, execution, key).state
    if state == "pending":
        why = "it has not asked for a decision yet (its dependencies have not finished)"
    else:
        why = f"it is {state}, not waiting for a decision"
    return StateConflictError(
        f"cannot {_verb(decision)} step '{key}' of execution {execution.id}: {why}"
    )


def _expired(approval: ApprovalRecord, now: float) -> bool:
    return approval.expires_at is not None and approval.expires_at <= now


def _verb(decision: ApprovalDecision) -> str:
    return "approve" if decision == "approved" else "reject"
