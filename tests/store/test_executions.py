"""Executions: creation, lookup by ID or unique prefix, listing newest first."""

from __future__ import annotations

import time
import uuid

import pytest

from automatosx.errors import NotFoundError
from automatosx.store.base import Store
from tests.store import sample


def insert_execution_with_id(store: Store, execution_id: str, workflow_id: str) -> None:
    """An execution row with a chosen ID (prefix collisions cannot be had from uuid4)."""
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(
            "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
            "priority, created_at, updated_at) VALUES (?, ?, 'idle', '{}', 'test', 0, ?, ?)",
            (execution_id, workflow_id, time.time(), time.time()),
        )


def test_create_execution_is_idle_and_leased(store: Store) -> None:
    workflow = sample.workflow(store)
    execution, lease = sample.execution(store, workflow.id, context={"filePath": "a.py"})
    assert uuid.UUID(execution.id).version == 4
    assert execution.workflow_id == workflow.id
    assert execution.workflow_name == "code-review"
    assert execution.state == "idle"
    assert execution.context == {"filePath": "a.py"}
    assert execution.triggered_by == "cli" and execution.priority == 0
    assert execution.started_at is None and execution.completed_at is None
    assert execution.lease_owner == sample.OWNER and execution.lease_epoch == 1
    assert lease.execution_id == execution.id and lease.epoch == 1
    assert lease.expires_at == pytest.approx(time.time() + 60, abs=5)
    assert store.get_execution(execution.id) == execution


def test_create_execution_with_parent_and_unknown_references(store: Store) -> None:
    workflow = sample.workflow(store)
    parent, _ = sample.execution(store, workflow.id)
    child, _ = store.create_execution(
        workflow_id=workflow.id,
        context={},
        triggered_by="parent",
        priority=5,
        owner=sample.OWNER,
        lease_seconds=10,
        parent_execution_id=parent.id,
    )
    assert child.parent_execution_id == parent.id and child.priority == 5
    with pytest.raises(NotFoundError, match="no workflow"):
        sample.execution(store, "missing-workflow")
    with pytest.raises(NotFoundError, match="no execution"):
        store.create_execution(
            workflow_id=workflow.id,
            context={},
            triggered_by="x",
            priority=0,
            owner=sample.OWNER,
            lease_seconds=10,
            parent_execution_id=str(uuid.uuid4()),
        )


def test_get_execution_by_unique_prefix(store: Store) -> None:
    execution, _ = sample.execution(store)
    assert store.get_execution(execution.id[:8]).id == execution.id
    assert store.get_execution(execution.id[:13].upper()).id == execution.id
    assert store.get_execution(f"  {execution.id}  ").id == execution.id


def test_short_or_unknown_ids_are_not_found(store: Store) -> None:
    execution, _ = sample.execution(store)
    with pytest.raises(NotFoundError, match="at least 8 characters"):
        store.get_execution(execution.id[:7])
    with pytest.raises(NotFoundError, match="no execution"):
        store.get_execution(str(uuid.uuid4()))
    with pytest.raises(NotFoundError, match="no execution"):
        store.get_execution("zzzzzzzz")


def test_ambiguous_prefix_says_so(store: Store) -> None:
    workflow = sample.workflow(store)
    insert_execution_with_id(store, "abcdef01-0000-4000-8000-000000000001", workflow.id)
    insert_execution_with_id(store, "abcdef01-0000-4000-8000-000000000002", workflow.id)
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get_execution("abcdef01")
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get_execution("abcdef01-0000-4000-8000-00000000000")
    found = store.get_execution("abcdef01-0000-4000-8000-000000000002")
    assert found.id.endswith("2")


def test_list_executions_newest_first_with_filters(store: Store) -> None:
    review = sample.workflow(store)
    other = sample.workflow(store, name="other")
    created = [sample.execution(store, review.id)[0].id for _ in range(3)]
    lone, lease = sample.execution(store, other.id)
    from automatosx.store.records import SetExecutionState

    store.write(lease, [SetExecutionState("completed")])
    listed = store.list_executions()
    assert [e.id for e in listed] == [lone.id, *reversed(created)]
    assert [e.id for e in store.list_executions(workflow_name="code-review", limit=2)] == list(
        reversed(created)
    )[:2]
    assert [e.id for e in store.list_executions(states=["completed"])] == [lone.id]
    assert store.list_executions(states=[]) == []
    assert store.list_executions(workflow_name="nobody") == []


def test_an_execution_keeps_the_definition_it_started_with(store: Store) -> None:
    workflow = sample.workflow(store)
    first, _ = sample.execution(store, workflow.id)
    edited = sample.definition(steps=[{"key": "only", "agent": "writer", "prompt": "hi"}])
    assert store.upsert_workflow(edited).id == workflow.id  # same (name, version): replaced
    second, _ = sample.execution(store, workflow.id)

    assert [s["key"] for s in store.execution_definition(first.id)["steps"]] == [
        "parse",
        "scan",
        "report",
    ]
    assert [s["key"] for s in store.execution_definition(second.id)["steps"]] == ["only"]
    with pytest.raises(NotFoundError):
        store.execution_definition(str(uuid.uuid4()))
