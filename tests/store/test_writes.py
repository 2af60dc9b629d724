"""The fenced write operations, step attempts, checkpoints and events."""

from __future__ import annotations

import time

import pytest

from automatosx.store.base import Store
from automatosx.store.records import (
    AppendEvent,
    CreateCheckpoint,
    FinishStepAttempt,
    IncrementResumeCount,
    SetContext,
    SetExecutionState,
    StartStepAttempt,
)
from tests.store import sample


def test_execution_state_sets_start_once_and_completion_on_terminal(store: Store) -> None:
    execution, lease = sample.execution(store)
    t0 = 1_800_000_000.0
    store.write(lease, [SetExecutionState("executing", at=t0)])
    store.write(lease, [SetExecutionState("paused", at=t0 + 5)])
    store.write(lease, [SetExecutionState("executing", at=t0 + 7), IncrementResumeCount()])
    running = store.get_execution(execution.id)
    assert running.state == "executing" and running.started_at == t0
    assert running.completed_at is None and running.duration_ms is None
    assert running.resume_count == 1
    store.write(lease, [SetExecutionState("failed", error="step scan failed", at=t0 + 9.25)])
    failed = store.get_execution(execution.id)
    assert (failed.state, failed.error) == ("failed", "step scan failed")
    assert failed.completed_at == t0 + 9.25
    assert failed.duration_ms == 9250  # computed by the duration trigger
    assert failed.is_terminal


def test_set_context_replaces_it(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(lease, [SetContext({"filePath": "y.py", "nested": {"a": [1, 2, None]}})])
    assert store.get_execution(execution.id).context == {
        "filePath": "y.py",
        "nested": {"a": [1, 2, None]},
    }


def test_nan_and_infinity_are_stored_as_null_never_failing_the_write(store: Store) -> None:
    """NaN/Infinity are not JSON: PostgreSQL's json type refuses them, so a write carrying
    one (a model's answer parsed by some provider) failed and killed the runner mid-run."""
    execution, lease = sample.execution(store)
    odd = {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "ok": 1.5}
    t = 1_800_000_000.0
    store.write(
        lease,
        [
            SetContext(odd),
            StartStepAttempt("parse", 1, "backend", "command", t),
            FinishStepAttempt("parse", 1, "completed", t + 1, output=odd),
            AppendEvent("step_completed", "parse", {"output": odd}, t + 1),
        ],
    )
    expected = {"nan": None, "inf": [None, None], "ok": 1.5}
    assert store.get_execution(execution.id).context == expected
    assert store.list_step_executions(execution.id)[0].output == expected
    assert store.list_events(execution.id)[-1].data == {"output": expected}


def test_step_attempts_record_outcome_usage_and_retries(store: Store) -> None:
    execution, lease = sample.execution(store)
    t = 1_800_000_000.0
    store.write(lease, [StartStepAttempt("parse", 1, "backend", "command", t)])
    [running] = store.list_step_executions(execution.id)
    assert (running.state, running.agent, running.provider) == ("running", "backend", "command")
    assert running.started_at == t and running.completed_at is None
    store.write(
        lease,
        [
            FinishStepAttempt(
                "parse", 1, "failed", t + 0.5, error_kind="timeout", error_message="too slow"
            ),
            StartStepAttempt("parse", 2, "backend", "command", t + 1),
        ],
    )
    store.write(
        lease,
        [
            FinishStepAttempt(
                "parse",
                2,
                "completed",
                t + 1.25,
                output={"functions": ["a", "b"], "text": "ünïcode ✓"},
                provider="openai",
                model="gpt-x",
                tokens_in=120,
                tokens_out=30,
                cost_usd=0.0042,
            )
        ],
    )
    first, second = store.list_step_executions(execution.id)
    assert (first.attempt, first.state, first.error_kind, first.error_message) == (
        1,
        "failed",
        "timeout",
        "too slow",
    )
    assert first.duration_ms == 500
    assert second.attempt == 2 and second.state == "completed"
    assert second.output == {"functions": ["a", "b"], "text": "ünïcode ✓"}
    assert (second.provider, second.model) == ("openai", "gpt-x")
    assert (second.tokens_in, second.tokens_out, second.cost_usd) == (120, 30, 0.0042)
    assert second.duration_ms == 250


def test_finishing_a_step_that_never_started_records_it(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(lease, [FinishStepAttempt("report", 1, "skipped", time.time())])
    [skipped] = store.list_step_executions(execution.id)
    assert skipped.state == "skipped" and skipped.started_at is None
    assert skipped.duration_ms is None


def test_list_step_executions_orders_by_step_then_attempt(store: Store) -> None:
    execution, lease = sample.execution(store)
    t = time.time()
    store.write(
        lease,
        [
            StartStepAttempt("scan", 2, "security", "command", t),
            StartStepAttempt("parse", 1, "backend", "command", t),
            StartStepAttempt("scan", 1, "security", "command", t),
        ],
    )
    order = [(s.step_key, s.attempt) for s in store.list_step_executions(execution.id)]
    assert order == [("parse", 1), ("scan", 1), ("scan", 2)]


def test_a_failing_batch_applies_nothing(store: Store) -> None:
    execution, lease = sample.execution(store)
    with pytest.raises(TypeError, match="not a store write operation"):
        store.write(lease, [AppendEvent("workflow_started"), "bogus"])  # type: ignore[list-item]
    assert store.list_events(execution.id) == []


def test_checkpoints_newest_first_latest_and_limit(store: Store) -> None:
    execution, lease = sample.execution(store)
    assert store.latest_checkpoint(execution.id) is None
    for n in range(3):
        store.write(
            lease,
            [
                CreateCheckpoint(
                    state="executing",
                    context={"n": n},
                    completed_steps=["parse"][:n],
                    pending_steps=["scan", "report"],
                    label=f"cp{n}",
                    created_by="automatic" if n < 2 else "pause",
                )
            ],
        )
    listed = store.list_checkpoints(execution.id)
    assert [c.label for c in listed] == ["cp2", "cp1", "cp0"]
    assert [c.label for c in store.list_checkpoints(execution.id, limit=2)] == ["cp2", "cp1"]
    latest = store.latest_checkpoint(execution.id)
    assert latest is not None and latest == listed[0]
    assert latest.created_by == "pause" and latest.context == {"n": 2}
    assert latest.completed_steps == ["parse"] and latest.pending_steps == ["scan", "report"]
    assert latest.execution_id == execution.id and latest.state == "executing"
    assert len({c.id for c in listed}) == 3


def test_checkpoint_size_is_its_payload_bytes(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(
        lease,
        [CreateCheckpoint("paused", {"k": "é"}, ["a"], ["b", "c"], None, "user")],
    )
    checkpoint = store.latest_checkpoint(execution.id)
    assert checkpoint is not None
    payload = ["paused", '{"k":"\\u00e9"}', '["a"]', '["b","c"]']
    assert checkpoint.size_bytes == sum(len(p.encode()) for p in payload)


def test_events_are_strictly_ordered_and_pageable(store: Store) -> None:
    execution, lease = sample.execution(store)
    other, other_lease = sample.execution(store)
    t = 1_800_000_000.0
    store.write(lease, [AppendEvent("workflow_started", data={"n": 0}, at=t)])
    store.write(other_lease, [AppendEvent("workflow_started")])
    store.write(
        lease,
        [
            AppendEvent("step_started", "parse", {"attempt": 1}),
            AppendEvent("step_completed", "parse", {"attempt": 1, "durationMs": 3}),
        ],
    )
    events = store.list_events(execution.id)
    assert [e.type for e in events] == ["workflow_started", "step_started", "step_completed"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert len({e.id for e in events}) == 3
    assert events[0].created_at == t and events[0].data == {"n": 0} and events[0].step_key is None
    assert events[2].data == {"attempt": 1, "durationMs": 3} and events[2].step_key == "parse"
    assert store.list_events(execution.id, after_id=events[0].id) == events[1:]
    assert store.list_events(execution.id, limit=1) == events[:1]
    assert store.list_events(execution.id, after_id=events[-1].id) == []
    assert [e.execution_id for e in store.list_events(other.id)] == [other.id]
