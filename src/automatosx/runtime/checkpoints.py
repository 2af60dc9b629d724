"""Checkpoint snapshots: `{state, context, completedSteps, pendingSteps}` (SPEC section 5).

They are what `ax workflow checkpoints` shows and what a person reads to see where a run
stood; resume itself rebuilds from the step records, which are never older than a snapshot.
"""

from __future__ import annotations

from typing import Any

from automatosx.store.records import AppendEvent, CheckpointCreator, CreateCheckpoint, WriteOp


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
