"""The schema's derived data: statistics and duration triggers, and the three views."""

from __future__ import annotations

import time

import pytest

from automatosx.store.base import Store
from automatosx.store.records import SetExecutionState
from tests.store import sample
from tests.store.steps import Steps


def _finish(store: Store, workflow_id: str, state: str, seconds: float) -> str:
    execution, lease = sample.execution(store, workflow_id)
    t = 1_800_000_000.0
    store.write(lease, [SetExecutionState("executing", at=t)])
    store.write(lease, [SetExecutionState(state, at=t + seconds)])  # type: ignore[arg-type]
    return execution.id


def test_terminal_states_update_workflow_statistics(store: Store) -> None:
    workflow = sample.workflow(store)
    _finish(store, workflow.id, "completed", 1.0)
    _finish(store, workflow.id, "completed", 3.0)
    _finish(store, workflow.id, "failed", 2.0)
    _finish(store, workflow.id, "cancelled", 6.0)
    sample.execution(store, workflow.id)  # still running: not counted
    stats = store.get_workflow(workflow.id)
    assert stats.total_executions == 4
    assert stats.successful_executions == 2
    assert stats.failed_executions == 1
    assert stats.success_rate == 0.5
    assert stats.avg_duration_ms == pytest.approx(3000.0)


def test_statistics_count_a_terminal_transition_once(store: Store) -> None:
    workflow = sample.workflow(store)
    _, lease = sample.execution(store, workflow.id)
    store.write(lease, [SetExecutionState("completed")])
    store.write(lease, [SetExecutionState("completed")])
    assert store.get_workflow(workflow.id).total_executions == 1


def test_execution_summary_view(store: Store) -> None:
    workflow = sample.workflow(store)
    _finish(store, workflow.id, "completed", 2.0)
    _finish(store, workflow.id, "failed", 4.0)
    sample.execution(store, workflow.id)
    sample.workflow(store, name="unused")
    rows = {r["workflow_name"]: r for r in store.fetch_view("workflow_execution_summary")}  # type: ignore[attr-defined]
    review = rows["code-review"]
    assert review["workflow_id"] == workflow.id
    assert (review["total_executions"], review["completed_executions"]) == (3, 1)
    assert (review["failed_executions"], review["cancelled_executions"]) == (1, 0)
    assert review["active_executions"] == 1
    assert review["avg_duration_ms"] == pytest.approx(3000.0)
    assert rows["unused"]["total_executions"] == 0 and rows["unused"]["avg_duration_ms"] is None


def test_step_summary_view(store: Store) -> None:
    """One row per instance: state, attempts and usage totals from the instance (the latest
    attempt started at t + 2), the total duration and the first start from the history."""
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    t = 1_800_000_000.0
    store.write(lease, steps.created())
    store.write(lease, [*steps.start("report", t), *steps.fail("report", t + 1, "timeout")])
    store.write(lease, steps.start("report", t + 2))
    store.write(
        lease,
        steps.succeed(
            "report", t + 2.5, provider="openai", tokens_in=30, tokens_out=3, cost_usd=0.75
        ),
    )
    rows = {r["step_key"]: r for r in store.fetch_view("workflow_step_summary")}  # type: ignore[attr-defined]
    assert set(rows) == {"parse", "scan", "report"}
    row = rows["report"]
    assert (row["execution_id"], row["attempts"], row["state"]) == (execution.id, 2, "completed")
    assert row["total_duration_ms"] == 1500  # 1000 + 500, over both attempts
    assert (row["first_started_at"], row["last_completed_at"]) == (t, t + 2.5)
    assert (row["tokens_in"], row["tokens_out"]) == (30, 3)
    assert row["cost_usd"] == pytest.approx(0.75)
    never = rows["parse"]  # an instance that never started is listed too
    assert (never["execution_id"], never["attempts"], never["state"]) == (
        execution.id,
        0,
        "pending",
    )
    assert never["total_duration_ms"] is None and never["first_started_at"] is None
    assert never["last_completed_at"] is None and never["tokens_in"] is None


def test_recent_runs_view_is_newest_first(store: Store) -> None:
    workflow = sample.workflow(store)
    first = _finish(store, workflow.id, "completed", 1.0)
    second, _ = sample.execution(store, workflow.id)
    rows = store.fetch_view("workflow_recent_runs")  # type: ignore[attr-defined]
    assert [r["execution_id"] for r in rows] == [second.id, first]
    assert rows[1]["state"] == "completed" and rows[1]["duration_ms"] == 1000
    assert rows[0]["workflow_name"] == "code-review"


def test_timestamp_triggers_fill_times_a_writer_left_out(store: Store) -> None:
    execution, _ = sample.execution(store)
    before = time.time()
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(
            "UPDATE workflow_executions SET state = 'executing' WHERE id = ?", (execution.id,)
        )
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(
            "UPDATE workflow_executions SET state = 'completed' WHERE id = ?", (execution.id,)
        )
    done = store.get_execution(execution.id)
    assert done.started_at is not None and done.started_at >= before - 1
    assert done.completed_at is not None and done.completed_at >= done.started_at
    assert done.duration_ms is not None and 0 <= done.duration_ms < 60_000


def test_updated_at_trigger(store: Store) -> None:
    workflow = sample.workflow(store)
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE workflows SET updated_at = 1000.0 WHERE id = ?", (workflow.id,))
    assert store.get_workflow(workflow.id).updated_at == 1000.0
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE workflows SET description = 'by hand' WHERE id = ?", (workflow.id,))
    edited = store.get_workflow(workflow.id)
    assert edited.description == "by hand"
    assert edited.updated_at == pytest.approx(time.time(), abs=60)
