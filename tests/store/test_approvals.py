"""The approval decision's compare-and-set and the reads around it, on SQLite and PostgreSQL:
of many racing deciders exactly one records its decision; none is recorded for a gate that
does not wait, or past its deadline (where the timeout decides, as of the deadline)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from automatosx.definition.models import ApprovalSpec, WorkflowDefinition
from automatosx.runtime.approvals import apply_decision, request_approval
from automatosx.store import open_store, sqlite_file
from automatosx.store.base import Store
from automatosx.store.records import (
    ExecutionRecord,
    Lease,
    PutInstance,
    SetExecutionState,
    StepInstanceRecord,
)
from tests.store.sample import execution as leased_execution
from tests.store.sample import race

RACERS = 8


def _gate_execution(
    store: Store, timeout_ms: int | None = None, on_timeout: str = "reject"
) -> tuple[ExecutionRecord, Lease, StepInstanceRecord]:
    """An execution whose gate `review` waits (as the runner leaves it), and a pending
    step `later`."""
    approval: dict[str, Any] = {"message": "Go?", "onTimeout": on_timeout}
    if timeout_ms is not None:
        approval["timeoutMs"] = timeout_ms
    definition = WorkflowDefinition.model_validate(
        {
            "name": "gated",
            "steps": [
                {"key": "review", "approval": approval},
                {"key": "later", "approval": {"message": "Later?"}, "dependencies": ["review"]},
            ],
        }
    )
    workflow = store.upsert_workflow(definition)
    review = StepInstanceRecord("", "review", "review", 0, "pending")
    later = StepInstanceRecord("", "later", "later", 1, "pending")
    execution, lease = leased_execution(store, workflow.id, owner="host:1:test", context={})
    review = review.evolve(execution_id=execution.id)
    later = later.evolve(execution_id=execution.id)
    spec = ApprovalSpec.model_validate(approval)
    ops = [SetExecutionState("executing"), PutInstance(review), PutInstance(later)]
    ops += request_approval(review, spec, message="Go?", now=1000.0)
    store.write(lease, ops)
    waiting = {i.key: i for i in store.list_instances(execution.id)}["review"]
    assert waiting.state == "waiting"
    return execution, lease, waiting


def test_of_racing_deciders_exactly_one_records_its_decision(store: Store, store_url: str) -> None:
    execution, _, _ = _gate_execution(store)
    won: dict[str, bool] = {}

    def decide(index: int, racer: Store) -> None:
        decision = "approved" if index % 2 else "rejected"
        won[f"user{index}"] = racer.decide_approval(
            execution.id, "review", decision, by=f"user{index}", comment=None, now=2000.0
        )

    race(store_url, RACERS, decide)
    winners = [user for user, ok in won.items() if ok]
    assert len(won) == RACERS and len(winners) == 1, won
    recorded = store.get_approval(execution.id, "review")
    assert recorded is not None and recorded.decided_by == winners[0]
    index = int(winners[0].removeprefix("user"))
    assert recorded.decision == ("approved" if index % 2 else "rejected")
    assert recorded.decided_at == 2000.0
    # Decided, not yet applied: what the runner reads on its next control tick.
    assert [a.step_key for a in store.waiting_approvals(execution.id, decided_only=True)] == [
        "review"
    ]
    assert store.pending_approvals() == []  # decided: nobody has to decide it any more


def test_nothing_is_decided_for_a_gate_that_does_not_wait(store: Store) -> None:
    execution, lease, waiting = _gate_execution(store)
    # `later` has not opened: no row, and its instance is pending.
    assert not store.decide_approval(
        execution.id, "later", "approved", by="a", comment=None, now=1.0
    )
    assert store.get_approval(execution.id, "later") is None
    assert store.decide_approval(execution.id, "review", "approved", by="a", comment="ok", now=2.0)
    approval = store.get_approval(execution.id, "review")
    assert approval is not None
    ops, error = apply_decision(waiting, approval, optional=False, now=3.0)
    assert error is None
    store.write(lease, ops)  # the runner applied it: the gate is completed
    assert store.waiting_approvals(execution.id) == []
    # The row is decided and the instance no longer waits: a second decision changes nothing.
    assert not store.decide_approval(
        execution.id, "review", "rejected", by="b", comment=None, now=4.0
    )
    after = store.get_approval(execution.id, "review")
    assert after is not None and (after.decision, after.decided_by) == ("approved", "a")
    completed = {i.key: i for i in store.list_instances(execution.id)}["review"]
    assert completed.state == "completed"
    assert completed.output == {
        "approved": True,
        "by": "a",
        "comment": "ok",
        "at": "1970-01-01T00:00:02.000Z",  # when it was decided, ISO-8601
    }


def test_past_the_deadline_only_the_timeout_decides(store: Store) -> None:
    execution, _, _ = _gate_execution(store, timeout_ms=5000, on_timeout="approve")
    stored = store.get_approval(execution.id, "review")
    assert stored is not None and stored.expires_at == 1005.0  # requested at 1000 + 5 s
    (entry,) = store.pending_approvals()
    assert (entry.workflow_name, entry.approval.step_key, entry.approval.message) == (
        "gated",
        "review",
        "Go?",
    )
    assert not store.expire_approval(execution.id, "review", now=1004.9)  # not yet
    assert not store.decide_approval(
        execution.id, "review", "rejected", by="a", comment=None, now=1005.0
    )
    assert store.expire_approval(execution.id, "review", now=1010.0)
    assert not store.expire_approval(execution.id, "review", now=1011.0)  # once
    decided = store.get_approval(execution.id, "review")
    assert decided is not None
    assert (decided.decision, decided.decided_by, decided.decided_at) == (
        "approved",
        "timeout",
        1005.0,
    )


def test_pending_leaves_out_finished_executions(store: Store) -> None:
    execution, lease, _ = _gate_execution(store)
    assert [p.approval.execution_id for p in store.pending_approvals()] == [execution.id]
    store.write(lease, [SetExecutionState("failed", "stopped")])
    assert store.pending_approvals() == []


def test_an_older_sqlite_log_keeps_its_events_and_their_ids(tmp_path: Path) -> None:
    """Version 8 rebuilds SQLite's event table to accept the approval events: every stored
    event stays, with its ID, and an ID once handed out (even of a pruned event) is never
    handed out again."""
    path = tmp_path / "v7.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert sqlite_file.migrate(conn, target=7) == 7
    conn.execute(
        "INSERT INTO workflows (id, name, version, definition, created_at, updated_at) "
        "VALUES ('wf', 'old', '1.0.0', '{}', 1, 1)"
    )
    conn.execute(
        "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
        "priority, created_at, updated_at) VALUES ('e1', 'wf', 'completed', '{}', 'cli', 0, 1, 1)"
    )
    for event in ("workflow_started", "step_started", "step_completed"):
        conn.execute(
            "INSERT INTO workflow_events (execution_id, type, data, created_at) "
            "VALUES ('e1', ?, '{}', 2)",
            (event,),
        )
    conn.execute("DELETE FROM workflow_events WHERE id = 3")
    conn.close()
    with open_store(str(path)) as store:  # type: ignore[attr-defined]
        assert [(e.id, e.type) for e in store.list_events("e1")] == [
            (1, "workflow_started"),
            (2, "step_started"),
        ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO workflow_events (execution_id, type, data, created_at) "
        "VALUES ('e1', 'approval_requested', '{}', 3)"
    )
    ids = [row[0] for row in conn.execute("SELECT id FROM workflow_events ORDER BY id")]
    conn.close()
    assert ids == [1, 2, 4]
