"""Turns of submitted executions on the real PostgreSQL, without worker processes: the
answer and what it unlocks in one commit, idempotent turns, the claim and answer fences,
cancelling, a retry's scheduled turn, re-deferring a stopped job, a turn for an execution
nothing attends, per-provider slots, and the call/outcome JSON a dispatch carries."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.definition.models import AgentSpec
from automatosx.definition.validation import validate_document
from automatosx.errors import StepError
from automatosx.runtime import turn as turn_module
from automatosx.runtime.cache_policy import CachePolicy, CacheUse
from automatosx.runtime.control import submit_execution
from automatosx.runtime.preparation import prepare_workflow
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.runtime.turn import Answer, take_turn
from automatosx.runtime.wire import (
    cache_from_json,
    call_from_json,
    call_to_json,
    outcome_from_json,
    outcome_to_json,
)
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.dispatch import ATTEMPT_TASK
from automatosx.store.queue_jobs import TURN_TASK
from automatosx.store.records import CacheEntry
from automatosx.worker.queue import ensure_job_queue
from tests.runtime.support import step, workflow

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    opened = open_store(pg_url)
    try:
        ensure_job_queue(opened)
        yield opened
    finally:
        opened.close()


def submitted(store: Store, tmp_path: Path, steps: list[dict[str, Any]], **config: Any) -> str:
    """A submitted execution (nobody has taken a turn of it yet)."""
    document = validate_document(workflow(steps, config=config))
    prepared = prepare_workflow(document, workdir=tmp_path)
    return submit_execution(store, prepared, context={}).id


def jobs(store: Store, task: str) -> list[tuple[str, Any]]:
    """(status, scheduled_at) of each job of the task, oldest first."""
    fetch = store._fetch_all  # type: ignore[attr-defined]
    rows = fetch(
        "SELECT status, scheduled_at FROM procrastinate_jobs WHERE task_name = ? ORDER BY id",
        [task],
    )
    return [(row[0], row[1]) for row in rows]


def dispatched(store: Store, execution_id: str) -> dict[str, tuple[str, str]]:
    """step key -> (dispatch ID, state) of its latest dispatch."""
    fetch = store._fetch_all  # type: ignore[attr-defined]
    rows = fetch(
        "SELECT step_key, id, state FROM workflow_dispatched_attempts WHERE execution_id = ? "
        "ORDER BY created_at",
        [execution_id],
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def succeeded(key: str, attempt: int = 1, output: str = "ok") -> AttemptOutcome:
    now = time.time()
    return AttemptOutcome(key, attempt, now, now, ProviderResult(output, "command"))


def test_the_answer_and_what_it_unlocks_commit_in_one_turn(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a"), step("b", deps=["a"])])
    assert jobs(store, TURN_TASK) == [("todo", None)]  # deferred with the execution
    first = take_turn(store, execution_id, by="w1")
    assert (first.state, first.started) == ("executing", 1)
    ((a_id, state),) = dispatched(store, execution_id).values()
    assert state == "queued"
    claim = store.claim_dispatch(a_id, "w1")
    assert claim is not None and claim.lost_from is None and claim.call["stepKey"] == "a"
    result = take_turn(store, execution_id, answer=Answer(a_id, "w1", succeeded("a")))
    assert (result.state, result.started, result.refused) == ("executing", 1, False)
    steps = {r.key: r for r in store.list_instances(execution_id)}
    assert (steps["a"].state, steps["a"].output, steps["b"].state) == ("completed", "ok", "running")
    assert {k: v[1] for k, v in dispatched(store, execution_id).items()} == {
        "a": "done",
        "b": "queued",
    }
    assert [status for status, _ in jobs(store, ATTEMPT_TASK)] == ["todo", "todo"]
    b_id = dispatched(store, execution_id)["b"][0]
    assert store.claim_dispatch(b_id, "w2") is not None
    ended = take_turn(store, execution_id, answer=Answer(b_id, "w2", succeeded("b")))
    assert (ended.state, ended.ended) == ("completed", True)
    assert store.get_execution(execution_id).state == "completed"


def test_a_turn_with_nothing_new_writes_nothing(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a")])
    take_turn(store, execution_id)
    before = store.list_events(execution_id)
    again = take_turn(store, execution_id)  # a duplicate job, a late timer
    assert (again.state, again.started) == ("executing", 0)
    assert store.list_events(execution_id) == before
    assert len(dispatched(store, execution_id)) == 1


def test_only_the_current_claimant_answers(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a"), step("b", deps=["a"])])
    take_turn(store, execution_id)
    ((a_id, _),) = dispatched(store, execution_id).values()
    assert store.claim_dispatch(a_id, "w1") is not None
    # its job was retried after w1 went silent: w2 takes the attempt over
    retaken = store.claim_dispatch(a_id, "w2")
    assert retaken is not None and retaken.lost_from == "w1"
    late = take_turn(store, execution_id, answer=Answer(a_id, "w1", succeeded("a", output="late")))
    assert late.refused  # the frozen worker's answer: nothing recorded
    assert {r.key: r.state for r in store.list_instances(execution_id)} == {
        "a": "running",
        "b": "pending",
    }
    # w2 closes the lost attempt: the step runs again as attempt 2, a dispatch of its own
    lost = Answer(a_id, "w2", step_key="a", attempt=1)
    assert take_turn(store, execution_id, answer=lost).started == 1
    (record,) = [r for r in store.list_instances(execution_id) if r.key == "a"]
    assert (record.state, record.attempt) == ("running", 2)
    assert store.claim_dispatch(a_id, "w3") is None  # nothing left to run of attempt 1


def test_cancel_stops_every_attempt_still_out(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a"), step("b")])
    take_turn(store, execution_id)
    ids = [d for d, _ in dispatched(store, execution_id).values()]
    assert store.claim_dispatch(ids[1], "w1") is not None
    store.request_control(execution_id, "cancel")
    ended = take_turn(store, execution_id)
    assert (ended.state, ended.ended) == ("cancelled", True)
    assert {state for _, state in dispatched(store, execution_id).values()} == {"cancelled"}
    # their jobs aborted (procrastinate cancels a job not yet running; a running one's task)
    assert [status for status, _ in jobs(store, ATTEMPT_TASK)] == ["cancelled", "cancelled"]
    assert store.claim_dispatch(ids[0], "w2") is None
    assert take_turn(store, execution_id, answer=Answer(ids[1], "w1", succeeded("b"))).refused


def test_cancelling_a_queued_execution_never_starts_it(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a"), step("b", deps=["a"])])
    store.request_control(execution_id, "cancel")
    ended = take_turn(store, execution_id)  # the shell's turn, or the submit's first one
    assert (ended.state, ended.ended, ended.started) == ("cancelled", True, 0)
    assert [e.type for e in store.list_events(execution_id)] == [
        "step_cancelled",
        "step_cancelled",
        "workflow_cancelled",
    ]  # never `workflow_started`
    assert {r.key: (r.state, r.attempt) for r in store.list_instances(execution_id)} == {
        "a": ("cancelled", 0),
        "b": ("cancelled", 0),
    }
    assert dispatched(store, execution_id) == {}
    assert take_turn(store, execution_id).state == "cancelled"  # the submit's turn job, later


def test_a_retry_is_a_turn_scheduled_for_its_backoff(store: Store, tmp_path: Path) -> None:
    retry = {"maxRetries": 1, "retryDelayMs": 60_000}
    execution_id = submitted(store, tmp_path, [step("a", retryPolicy=retry)])
    take_turn(store, execution_id)
    ((a_id, _),) = dispatched(store, execution_id).values()
    store.claim_dispatch(a_id, "w1")
    before = time.time()
    failed = AttemptOutcome("a", 1, before, before, error=StepError("provider_error", "boom"))
    take_turn(store, execution_id, answer=Answer(a_id, "w1", failed))
    (record,) = store.list_instances(execution_id)
    assert record.state == "pending" and record.retry_at is not None
    assert record.retry_at >= before + 59
    ((status, at),) = [job for job in jobs(store, TURN_TASK) if job[1] is not None]
    assert status == "todo" and abs(at.timestamp() - record.retry_at) < 0.01
    assert store.get_execution(execution_id).idle_until == record.retry_at
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(  # the submit's first turn job, as a worker would have run it
            "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE scheduled_at IS NULL"
        )
    # a decision, a resume: an immediate turn, whatever timer waits; one is enough
    assert store.wake_execution(execution_id) is True
    assert store.wake_execution(execution_id) is False
    take_turn(store, execution_id)  # early: nothing starts, and no second timer
    assert len([job for job in jobs(store, TURN_TASK) if job[1] is not None]) == 1
    assert len(dispatched(store, execution_id)) == 1


def test_the_workflow_timeout_counts_from_the_latest_resume(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a runner, time before a pause does not count: the timeout's turn is scheduled
    from the resume, also by a process that did not take the resume's turn."""
    execution_id = submitted(store, tmp_path, [step("a"), step("b", deps=["a"])], timeout=60_000)
    take_turn(store, execution_id)
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(  # it started long ago
            "UPDATE workflow_executions SET started_at = started_at - 1000 WHERE id = ?",
            [execution_id],
        )
    ((a_id, _),) = dispatched(store, execution_id).values()
    store.claim_dispatch(a_id, "w1")
    store.request_control(execution_id, "pause")
    assert take_turn(store, execution_id, answer=Answer(a_id, "w1", succeeded("a"))).state == (
        "paused"
    )
    store.wake_execution(execution_id, requeue_paused=True)
    resumed_at = time.time()
    assert take_turn(store, execution_id, by="w2").started == 1  # resumed: b starts
    scheduled = store.get_execution(execution_id).idle_until
    assert scheduled is not None and abs(scheduled - (resumed_at + 60)) < 1
    monkeypatch.setattr(turn_module, "_SEGMENTS", OrderedDict())
    take_turn(store, execution_id, by="w3")  # another process: reads when it was resumed
    later = store.get_execution(execution_id).idle_until
    assert later is not None and abs(later - (resumed_at + 60)) < 1


def test_a_turn_writes_the_periodic_checkpoint_when_one_is_due(
    store: Store, tmp_path: Path
) -> None:
    steps = [step("a"), step("b", deps=["a"]), step("c", deps=["b"])]
    execution_id = submitted(store, tmp_path, steps, checkpointInterval=200)
    take_turn(store, execution_id)
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(  # it started an interval and more ago
            "UPDATE workflow_executions SET started_at = started_at - 1 WHERE id = ?",
            [execution_id],
        )

    def answer(key: str) -> None:
        dispatch_id = dispatched(store, execution_id)[key][0]
        store.claim_dispatch(dispatch_id, "w1")
        take_turn(store, execution_id, answer=Answer(dispatch_id, "w1", succeeded(key)))

    answer("a")  # due: written, as it is after this turn (b running)
    answer("b")  # the last one is younger than an interval: none
    (checkpoint,) = store.list_checkpoints(execution_id)
    assert (checkpoint.created_by, checkpoint.state) == ("automatic", "executing")
    assert (checkpoint.completed_steps, checkpoint.pending_steps) == (["a"], ["b", "c"])


def test_no_periodic_checkpoint_while_only_a_gate_waits(store: Store, tmp_path: Path) -> None:
    """It would repeat the last one: nothing changes until a person decides."""
    gate = {"key": "gate", "approval": {"message": "ship it?"}}
    execution_id = submitted(
        store, tmp_path, [gate, step("b", deps=["gate"])], checkpointInterval=200
    )
    take_turn(store, execution_id)
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(
            "UPDATE workflow_executions SET started_at = started_at - 1 WHERE id = ?",
            [execution_id],
        )
    take_turn(store, execution_id)  # a late timer, a duplicate job: the gate still waits
    assert store.list_checkpoints(execution_id) == []


def test_a_dispatch_whose_job_stopped_gets_a_new_one(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a")])
    take_turn(store, execution_id)
    ((dispatch_id, _),) = dispatched(store, execution_id).values()
    assert store.redefer_dispatches() == 0  # its job waits: nothing to do
    fetch = store._fetch_all  # type: ignore[attr-defined]
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute(  # a draining worker's
            "UPDATE procrastinate_jobs SET status = 'aborted' WHERE task_name = ?", [ATTEMPT_TASK]
        )
    assert store.redefer_dispatches() == 1
    (status,) = fetch(
        "SELECT j.status FROM workflow_dispatched_attempts d JOIN procrastinate_jobs j "
        "ON j.id = d.job_id WHERE d.id = ?",
        [dispatch_id],
    )
    assert status[0] == "todo"
    claim = store.claim_dispatch(dispatch_id, "w9")
    assert claim is not None and claim.lost_from is None


def test_an_execution_nothing_attends_gets_a_turn(store: Store, tmp_path: Path) -> None:
    execution_id = submitted(store, tmp_path, [step("a")])
    assert store.wake_unattended() == 0  # its first turn waits
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE procrastinate_jobs SET status = 'failed'")  # that job failed
    assert store.wake_unattended() == 1
    take_turn(store, execution_id)
    assert store.wake_unattended() == 0  # its attempt is out


def test_provider_slots_count_across_holders(store: Store) -> None:
    take = store.take_provider_slot
    assert take("openai", 2, "w1", now=100.0, until=110.0) == 0
    assert take("openai", 2, "w2", now=100.0, until=110.0) == 1
    assert take("openai", 2, "w3", now=100.0, until=110.0) is None  # both taken
    assert take("claude-code", 1, "w3", now=100.0, until=110.0) == 0  # another provider's
    store.free_provider_slot("openai", 0, "w1")
    assert take("openai", 2, "w3", now=101.0, until=111.0) == 0
    assert store.renew_provider_slot("openai", 1, "w2", until=120.0) is True
    # w3 stops renewing (its worker died): once its lease ends, the slot is free again
    assert take("openai", 2, "w4", now=112.0, until=122.0) == 0
    assert store.renew_provider_slot("openai", 0, "w3", until=130.0) is False
    store.free_provider_slot("openai", 0, "w3")  # a late free from w3 frees nothing of w4's
    assert take("openai", 2, "w5", now=113.0, until=123.0) is None


def test_a_call_and_its_outcomes_cross_the_wire_unchanged(tmp_path: Path) -> None:
    agent = AgentSpec.model_validate(
        {"provider": "command", "command": ["sh", "-c", "cat"], "env": {"TOKEN": "${TOKEN}"}}
    )
    call = ProviderCall(
        execution_id="e", step_key="review[2]", attempt=3, agent_name="rev", agent=agent,
        prompt="p", context={"files": ["a"]}, timeout_s=1.5, output_schema={"type": "object"},
        workdir=tmp_path,
    )  # fmt: skip
    assert call_from_json(call_to_json(call)) == call
    assert call_to_json(call)["agent"]["env"] == {"TOKEN": "${TOKEN}"}  # the reference only
    result = ProviderResult({"ok": [1]}, "command", "m", 1, 2, 0.5)
    won = AttemptOutcome("review[2]", 3, 1.0, 2.0, result=result)
    lost = AttemptOutcome(
        "review[2]", 3, 1.0, 2.0, error=StepError("rate_limit", "slow", retry_after_s=4.0)
    )
    assert outcome_from_json("review[2]", 3, outcome_to_json(won)) == won
    back = outcome_from_json("review[2]", 3, outcome_to_json(lost))
    assert back.error is not None and back.result is None
    error = back.error
    assert (error.kind, error.message, error.retry_after_s) == ("rate_limit", "slow", 4.0)
    # a cached step: its rule travels with the call, its use (a hit, or a key to store
    # under) with the outcome
    assert cache_from_json(call_to_json(call, CachePolicy(ttl_ms=5000))) == CachePolicy(5000)
    assert cache_from_json(call_to_json(call)) is None
    entry = CacheEntry("k" * 64, {"ok": 1}, "command", None, "rev", 1, 2, 0.5, "e0", "a", 9.0)
    for use in (CacheUse("k" * 64, CachePolicy(None)), CacheUse("k" * 64, CachePolicy(10), entry)):
        cached = AttemptOutcome("review[2]", 3, 1.0, 2.0, result=result, cache=use)
        assert outcome_from_json("review[2]", 3, outcome_to_json(cached)) == cached
