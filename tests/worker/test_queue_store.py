"""The store's side of the workers' queue on the real PostgreSQL, without worker processes:
a dispatched attempt's claim and answer fences, cancelling, re-deferring a stopped job,
per-provider slots, and the call/outcome JSON a dispatch carries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.definition.models import AgentSpec, WorkflowDefinition
from automatosx.errors import StepError
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.records import PutInstance, StepInstanceRecord
from automatosx.worker.queue import ensure_job_queue
from automatosx.worker.wire import call_from_json, call_to_json, outcome_from_json, outcome_to_json

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    opened = open_store(pg_url)
    try:
        ensure_job_queue(opened)
        yield opened
    finally:
        opened.close()


def running_step(store: Store) -> tuple[str, str]:
    """An execution whose step `a` runs its attempt 1 (as a driver would have written)."""
    definition = WorkflowDefinition.model_validate(
        {"name": "q", "steps": [{"key": "a", "agent": "backend", "prompt": "x"}]}
    )
    workflow = store.upsert_workflow(definition)
    execution, lease = store.create_execution(
        workflow_id=workflow.id, context={}, triggered_by="test", priority=0,
        owner="host:1:driver", lease_seconds=60.0,
    )  # fmt: skip
    started = StepInstanceRecord(
        execution.id, "a", "a", 0, "running", attempt=1, agent="backend", started_at=1.0
    )
    store.write(lease, [PutInstance(started)])
    return execution.id, "a"


def dispatch(store: Store, execution_id: str, dispatch_id: str = "d1") -> str:
    store.dispatch_attempt(
        dispatch_id, execution_id=execution_id, step_key="a", attempt=1,
        queue_name="ax-provider:command", call={"prompt": "x"}, priority=0,
    )  # fmt: skip
    return dispatch_id


def test_only_the_current_claimant_answers(store: Store) -> None:
    execution_id, _ = running_step(store)
    dispatch_id = dispatch(store, execution_id)
    assert store.claim_dispatch(dispatch_id, "w1") == {"prompt": "x"}
    # its job was retried after w1 went silent: w2 takes the attempt over
    assert store.claim_dispatch(dispatch_id, "w2") == {"prompt": "x"}
    assert store.answer_dispatch(dispatch_id, "w1", {"late": True}) is False  # refused
    assert store.dispatch_answers([dispatch_id]) == {}
    assert store.answer_dispatch(dispatch_id, "w2", {"ok": 1}) is True
    assert store.dispatch_answers([dispatch_id]) == {dispatch_id: {"ok": 1}}
    assert store.answer_dispatch(dispatch_id, "w2", {"again": 1}) is False  # answered once
    assert store.claim_dispatch(dispatch_id, "w3") is None  # nothing left to run


def test_a_cancelled_or_stale_dispatch_is_never_run(store: Store) -> None:
    execution_id, _ = running_step(store)
    store.cancel_dispatch(dispatch(store, execution_id, "gone"))
    assert store.claim_dispatch("gone", "w1") is None
    # a dispatch whose step no longer runs that attempt (a new driver interrupted it)
    stale = dispatch(store, execution_id, "stale")
    (record,) = store.list_instances(execution_id)
    lease = store.acquire_lease(execution_id, "host:2:next", 60.0, now=10**10)
    store.write(lease, [PutInstance(record.evolve(state="pending"), record)])
    assert store.claim_dispatch(stale, "w1") is None
    assert store.redefer_dispatches() == 0  # marked stale: no new job for it


def test_a_new_driver_cancels_what_the_old_one_left_out(store: Store) -> None:
    execution_id, _ = running_step(store)
    dispatch(store, execution_id, "one")
    dispatch(store, execution_id, "two")
    store.claim_dispatch("two", "w1")
    assert store.cancel_dispatches(execution_id) == 2
    assert store.claim_dispatch("one", "w2") is None
    assert store.answer_dispatch("two", "w1", {"x": 1}) is False


def test_a_dispatch_whose_job_stopped_gets_a_new_one(store: Store) -> None:
    execution_id, _ = running_step(store)
    dispatch_id = dispatch(store, execution_id)
    assert store.redefer_dispatches() == 0  # its job waits: nothing to do
    fetch = store._fetch_all  # type: ignore[attr-defined]
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE procrastinate_jobs SET status = 'aborted'")  # a draining worker's
    assert store.redefer_dispatches() == 1
    (status,) = fetch(
        "SELECT j.status FROM workflow_dispatched_attempts d JOIN procrastinate_jobs j "
        "ON j.id = d.job_id WHERE d.id = ?",
        [dispatch_id],
    )
    assert status[0] == "todo"
    assert store.claim_dispatch(dispatch_id, "w9") == {"prompt": "x"}


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
