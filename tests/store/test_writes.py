"""The fenced write operations, step instances and attempts, checkpoints and events."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from automatosx.store.base import Store
from automatosx.store.events import ExecutionEvent, StepCompleted, StepStarted, WorkflowStarted
from automatosx.store.records import (
    AppendEvent,
    CreateCheckpoint,
    EventType,
    IncrementResumeCount,
    PutInstance,
    RecordAttempt,
    SetContext,
    SetExecutionState,
    StepExecutionRecord,
    StepInstanceRecord,
)
from tests.store import sample
from tests.store.steps import Steps


@dataclass(frozen=True)
class _Noted(ExecutionEvent):
    """An event carrying any value, to see how the store keeps event data."""

    type: ClassVar[EventType] = "checkpoint_created"
    output: Any


def _workflow_started() -> WorkflowStarted:
    return WorkflowStarted("code-review", "1.0.0", "cli", 0, 3, 1, sample.OWNER)


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
    steps = Steps(execution.id)
    odd = {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "ok": 1.5}
    t = 1_800_000_000.0
    store.write(
        lease,
        [
            SetContext(odd),
            *steps.start("parse", t),
            *steps.succeed("parse", t + 1, output=odd),
            AppendEvent(_Noted(output=odd), t + 1),
        ],
    )
    expected = {"nan": None, "inf": [None, None], "ok": 1.5}
    assert store.get_execution(execution.id).context == expected
    [parse] = store.list_instances(execution.id)
    assert parse.state == "completed" and parse.output == expected
    assert store.list_events(execution.id)[-1].data == {"output": expected}


def test_step_instances_record_outcome_usage_and_retries(store: Store) -> None:
    """`report` may retry: its failed attempt leaves it pending until the retry's time,
    the next attempt completes it. The instance holds its latest attempt (output, usage),
    the history the one before, moved there when the second began; every attempt is
    listed once."""
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    t = 1_800_000_000.0
    store.write(lease, steps.start("report", t))
    [running] = store.list_instances(execution.id)
    assert (running.key, running.step_key, running.position) == ("report", "report", 2)
    assert (running.state, running.attempt) == ("running", 1)
    assert (running.agent, running.provider) == ("writer", "command")
    assert running.started_at == t and running.completed_at is None
    [current] = store.list_step_executions(execution.id)  # the instance's latest attempt
    assert (current.attempt, current.state, current.started_at) == (1, "running", t)
    store.write(lease, steps.fail("report", t + 0.5, "timeout", "too slow"))
    [waiting] = store.list_instances(execution.id)
    assert (waiting.state, waiting.attempt, waiting.failures) == ("pending", 1, 1)
    assert (waiting.error_kind, waiting.error_message) == ("timeout", "too slow")
    assert waiting.retry_at == t + 0.5 and waiting.duration_ms == 500
    store.write(lease, steps.start("report", t + 1))
    store.write(
        lease,
        steps.succeed(
            "report",
            t + 1.25,
            output={"functions": ["a", "b"], "text": "ünïcode ✓"},
            provider="openai",
            model="gpt-x",
            tokens_in=120,
            tokens_out=30,
            cost_usd=0.0042,
        ),
    )
    first, second = store.list_step_executions(execution.id)
    assert (first.attempt, first.state, first.error_kind, first.error_message) == (
        1,
        "failed",
        "timeout",
        "too slow",
    )
    assert first.duration_ms == 500 and first.tokens_in is None
    assert second.attempt == 2 and second.state == "completed"
    assert (second.provider, second.model) == ("openai", "gpt-x")
    assert (second.tokens_in, second.tokens_out, second.cost_usd) == (120, 30, 0.0042)
    assert second.duration_ms == 250
    assert first.output is None  # a failed attempt has none
    assert second.output == {"functions": ["a", "b"], "text": "ünïcode ✓"}
    [done] = store.list_instances(execution.id)
    assert done == steps["report"]
    assert (done.state, done.attempt, done.failures) == ("completed", 2, 1)
    assert done.output == {"functions": ["a", "b"], "text": "ünïcode ✓"}
    assert (done.provider, done.model) == ("openai", "gpt-x")
    assert (done.tokens_in, done.tokens_out, done.cost_usd) == (120, 30, 0.0042)
    assert (done.started_at, done.completed_at, done.duration_ms) == (t + 1, t + 1.25, 250)
    assert done.retry_at is None and done.error_kind is None


def test_a_final_failure_leaves_the_instance_failed(store: Store) -> None:
    """`parse` has no retry: its failure is final; a never-retried kind is final even for
    `report`, which may retry."""
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    t = 1_800_000_000.0
    store.write(lease, [*steps.start("parse", t), *steps.start("report", t)])
    store.write(
        lease,
        [
            *steps.fail("parse", t + 2, "rate_limit", "429"),
            *steps.fail("report", t + 1, "template_error", "no {{x}}"),
        ],
    )
    parse, report = store.list_instances(execution.id)
    assert (parse.state, parse.failures, parse.retry_at) == ("failed", 1, None)
    assert (parse.error_kind, parse.duration_ms) == ("rate_limit", 2000)
    assert (report.state, report.error_kind, report.retry_at) == ("failed", "template_error", None)
    events = store.list_events(execution.id)
    assert [e.type for e in events] == ["step_started"] * 2 + ["step_failed"] * 2


def test_skipping_a_step_that_never_started_records_its_instance_only(store: Store) -> None:
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    store.write(lease, steps.created())
    store.write(lease, steps.skip("report", "scan", time.time()))
    listed = store.list_instances(execution.id)
    assert [(i.key, i.state) for i in listed] == [
        ("parse", "pending"),
        ("scan", "pending"),
        ("report", "skipped"),
    ]
    skipped = listed[2]
    assert skipped.attempt == 0 and skipped.started_at is None
    assert skipped.duration_ms is None
    assert skipped.error_message == "upstream step 'scan' failed"
    assert store.list_step_executions(execution.id) == []  # no attempt was ever made
    [event] = store.list_events(execution.id)
    assert (event.type, event.step_key) == ("step_skipped", "report")
    assert event.data == {"reason": "upstream step 'scan' failed", "failedStep": "scan"}


def test_put_instance_replaces_the_whole_record(store: Store) -> None:
    execution, lease = sample.execution(store)
    first = StepInstanceRecord(
        execution.id, "parse", "parse", 0, "failed", attempt=3, failures=3, output={"a": 1},
        error_kind="timeout", error_message="slow", tokens_in=7,
    )  # fmt: skip
    store.write(lease, [PutInstance(first)])
    assert store.list_instances(execution.id) == [first]
    second = StepInstanceRecord(execution.id, "parse", "parse", 0, "pending")
    store.write(lease, [PutInstance(second)])  # every field replaced, none merged
    assert store.list_instances(execution.id) == [second]
    third = StepInstanceRecord(execution.id, "parse", "parse", 0, "running", attempt=1)
    fourth = StepInstanceRecord(execution.id, "parse", "parse", 0, "completed", attempt=1)
    store.write(lease, [PutInstance(third), PutInstance(fourth)])  # one batch: the last stands
    assert store.list_instances(execution.id) == [fourth]


def test_list_instances_orders_by_position_then_item_index(store: Store) -> None:
    execution, lease = sample.execution(store)
    eid = execution.id

    def item(index: int) -> StepInstanceRecord:
        return StepInstanceRecord(
            eid, f"scan[{index}]", "scan", 1, "pending", parent_key="scan", item_index=index
        )

    store.write(
        lease,
        [
            PutInstance(StepInstanceRecord(eid, "report", "report", 2, "pending")),
            PutInstance(item(1)),
            PutInstance(StepInstanceRecord(eid, "scan", "scan", 1, "pending")),
            PutInstance(item(0)),
            PutInstance(StepInstanceRecord(eid, "parse", "parse", 0, "pending")),
        ],
    )
    listed = store.list_instances(eid)
    assert [i.key for i in listed] == ["parse", "scan", "scan[0]", "scan[1]", "report"]
    assert (listed[3].parent_key, listed[3].item_index) == ("scan", 1)


def test_list_step_executions_orders_by_step_then_attempt(store: Store) -> None:
    execution, lease = sample.execution(store)
    t = time.time()

    def attempt(key: str, number: int) -> RecordAttempt:
        return RecordAttempt(
            StepExecutionRecord(execution.id, key, number, "failed", started_at=t, completed_at=t)
        )

    store.write(lease, [attempt("scan", 2), attempt("parse", 1), attempt("scan", 1)])
    order = [(s.step_key, s.attempt) for s in store.list_step_executions(execution.id)]
    assert order == [("parse", 1), ("scan", 1), ("scan", 2)]


def test_a_failing_batch_applies_nothing(store: Store) -> None:
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    with pytest.raises(TypeError, match="not a store write operation"):
        store.write(
            lease,
            [
                SetContext({"changed": True}),
                *steps.start("parse", time.time()),
                AppendEvent(_workflow_started()),
                "bogus",  # type: ignore[list-item]
            ],
        )
    assert store.list_events(execution.id) == []
    assert store.list_instances(execution.id) == []
    assert store.get_execution(execution.id).context == {"filePath": "x.py"}


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
    store.write(lease, [AppendEvent(_workflow_started(), at=t)])
    store.write(other_lease, [AppendEvent(_workflow_started())])
    store.write(
        lease,
        [
            AppendEvent(StepStarted("parse", 1, "backend")),
            AppendEvent(StepCompleted("parse", 1, 3, "command")),
        ],
    )
    events = store.list_events(execution.id)
    assert [e.type for e in events] == ["workflow_started", "step_started", "step_completed"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert len({e.id for e in events}) == 3
    assert events[0].created_at == t and events[0].step_key is None
    assert events[0].data == {
        "workflowName": "code-review",
        "version": "1.0.0",
        "triggeredBy": "cli",
        "priority": 0,
        "steps": 3,
        "parallelism": 1,
        "owner": sample.OWNER,
    }  # camelCase keys; `workdir` left out while None
    assert events[2].data == {"attempt": 1, "durationMs": 3, "provider": "command"}
    assert events[2].step_key == "parse"
    assert store.list_events(execution.id, after_id=events[0].id) == events[1:]
    assert store.list_events(execution.id, limit=1) == events[:1]
    assert store.list_events(execution.id, after_id=events[-1].id) == []
    assert [e.execution_id for e in store.list_events(other.id)] == [other.id]
