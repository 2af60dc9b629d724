"""Checkpoint snapshots: `{state, context, completedSteps, pendingSteps}` (SPEC section 5).

They are what `ax workflow checkpoints` shows and what a person reads to see where a run
stood; resume itself rebuilds from the step records, which are never older than a snapshot.
"""

from __future__ import annotations

from typing import Any

from automatosx.store.records import (
    AppendEvent,
    CheckpointCreator,
    CreateCheckpoint,
    SetExecutionState,
    WriteOp,
)


def checkpoint_ops(
    *,
    state: str,
    context: dict[str, Any],
    completed_steps: list[str],
    pending_steps: list[str],
    created_by: CheckpointCreator,
    label: str | None,
    at: float,
) -> list[WriteOp]:
    return [
        CreateCheckpoint(
            state=state,
            context=context,
            completed_steps=completed_steps,
            pending_steps=pending_steps,
            label=label,
            created_by=created_by,
        ),
        AppendEvent(
            "checkpoint_created",
            None,
            {
                "createdBy": created_by,
                "label": label,
                "state": state,
                "completedSteps": len(completed_steps),
                "pendingSteps": len(pending_steps),
            },
            at,
        ),
    ]


def pause_ops(
    *,
    context: dict[str, Any],
    completed_steps: list[str],
    pending_steps: list[str],
    at: float,
    direct: bool = False,
) -> list[WriteOp]:
    """Everything a pause writes, whether a runner stops at a step boundary or `pause`
    itself pauses an execution with no live runner (`direct`): the `pause` checkpoint, the
    state and the event."""
    data: dict[str, Any] = {
        "completedSteps": len(completed_steps),
        "pendingSteps": len(pending_steps),
    }
    if direct:
        data["direct"] = True
    return [
        *checkpoint_ops(
            state="paused",
            context=context,
            completed_steps=completed_steps,
            pending_steps=pending_steps,
            created_by="pause",
            label="pause",
            at=at,
        ),
        SetExecutionState("paused", None, at),
        AppendEvent("workflow_paused", None, data, at),
    ]
