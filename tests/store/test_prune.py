"""Retention: old checkpoints and finished executions' old events go; resumability stays."""

from __future__ import annotations

import time

from automatosx.store.base import Store
from automatosx.store.events import (
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowStarted,
)
from automatosx.store.records import AppendEvent, CreateCheckpoint, SetExecutionState
from tests.store import sample

DAY = 86400.0

STARTED = WorkflowStarted("code-review", "1.0.0", "cli", 0, 3, 4, "host:1:runner-a")


def _checkpoint(label: str) -> CreateCheckpoint:
    return CreateCheckpoint("executing", {}, [], ["parse"], label, "automatic")


def test_prune_removes_old_checkpoints_and_finished_events(store: Store) -> None:
    finished, finished_lease = sample.execution(store)
    paused, paused_lease = sample.execution(store)
    store.write(finished_lease, [AppendEvent(STARTED), _checkpoint("f1"), _checkpoint("f2")])
    store.write(
        finished_lease, [SetExecutionState("completed"), AppendEvent(WorkflowCompleted(1, 3))]
    )
    store.write(paused_lease, [AppendEvent(STARTED), _checkpoint("p1"), _checkpoint("p2")])
    store.write(paused_lease, [SetExecutionState("paused"), AppendEvent(WorkflowPaused(0, 3))])

    nothing = store.prune(7 * DAY)
    assert (nothing.checkpoints, nothing.events) == (0, 0)

    result = store.prune(7 * DAY, now=time.time() + 8 * DAY)
    assert result.checkpoints == 3  # f1, f2 and p1; p2 keeps the paused run resumable
    assert result.events == 2  # only the finished execution's
    assert store.list_checkpoints(finished.id) == []
    assert [c.label for c in store.list_checkpoints(paused.id)] == ["p2"]
    assert store.list_events(finished.id) == []
    assert [e.type for e in store.list_events(paused.id)] == ["workflow_started", "workflow_paused"]


def test_prune_keeps_what_is_younger_than_the_age(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(lease, [_checkpoint("old"), AppendEvent(STARTED, at=time.time() - 2 * DAY)])
    store.write(lease, [SetExecutionState("failed"), AppendEvent(WorkflowFailed("boom"))])
    result = store.prune(DAY)
    assert (result.checkpoints, result.events) == (0, 1)
    assert [e.type for e in store.list_events(execution.id)] == ["workflow_failed"]
