"""The instance table and the transitions, without a store or a clock: readiness (eager,
in topological and file order), slots and exclusive steps, failures and what they leave
runnable, and rebuilding from stored instances on resume."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatosx.agents.base import ProviderResult
from automatosx.definition.graph import build_graph
from automatosx.definition.models import AgentSpec
from automatosx.definition.validation import validate_document
from automatosx.errors import StepError
from automatosx.runtime import transitions
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.plans import StepPlan, plan_steps
from automatosx.runtime.recovery import recovered_instances
from automatosx.store.records import PutInstance, RecordAttempt, StepInstanceRecord
from tests.definition.test_graph import dags
from tests.runtime.support import step, workflow

DIAMOND = [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), ("e", [])]


class Run:
    """An execution's table driven by hand through the real transitions."""

    def __init__(
        self,
        steps: list[dict[str, Any]],
        *,
        parallelism: int = 100,
        records: list[StepInstanceRecord] | None = None,
        **config: Any,
    ) -> None:
        definition = validate_document(
            workflow(steps, config={"parallelism": parallelism, **config})
        )
        agents = {"rec": AgentSpec(provider="command", command=["true"])}
        self.plans: dict[str, StepPlan] = plan_steps(definition, agents)
        if records is None:
            records = [transitions.new_instance("e", p) for p in self.plans.values()]
        self.table = InstanceTable(
            build_graph(definition), self.plans, records, parallelism=parallelism
        )
        self.now = 1_000.0

    def apply(self, ops: list[Any]) -> None:
        self.table.apply_ops(ops)

    def take(self) -> list[str]:
        """Start whatever may start now, as the engine does."""
        keys = self.table.take_startable()
        for key in keys:
            self.apply(transitions.start(self.table[key], self.plans[key], self.now))
        return keys

    def succeed(self, key: str) -> None:
        result = ProviderResult(f"out-{key}", "command")
        self.apply(transitions.succeed(self.table[key], result, self.now))

    def fail(self, key: str, kind: str = "provider_error") -> transitions.Failure:
        error = StepError(kind, "boom")  # type: ignore[arg-type]
        failure = transitions.fail(self.table[key], self.plans[key], error, self.now, delay_s=0.5)
        self.apply(failure.ops)
        return failure


def chain(pairs: list[tuple[str, list[str]]], **fields: Any) -> list[dict[str, Any]]:
    return [step(key, "x", deps, **fields.get(key, {})) for key, deps in pairs]


def test_instances_become_ready_as_soon_as_their_own_dependencies_complete() -> None:
    run = Run(chain(DIAMOND))
    assert run.take() == ["a", "e"]
    assert run.take() == []  # never handed out twice
    run.succeed("a")
    assert run.take() == ["b", "c"]
    run.succeed("c")
    assert run.take() == []  # d still waits for b, whatever "level" c was on
    run.succeed("b")
    assert run.take() == ["d"]
    assert run.table.holding == {"d", "e"}
    run.succeed("d")
    assert not run.table.is_finished()
    run.succeed("e")
    assert run.table.is_finished()
    assert run.table.outputs == {k: f"out-{k}" for k in "abcde"}


def test_slots_are_filled_and_an_exclusive_step_is_a_barrier() -> None:
    steps = [step(k, "x") for k in ("a", "b", "c")]
    steps += [step("x", "x", parallel=False), step("d", "x"), step("f", "x", ["x"])]
    run = Run(steps, parallelism=2)
    assert run.take() == ["a", "b"]
    run.succeed("a")
    assert run.take() == ["c"]
    run.succeed("b")
    assert run.take() == []  # x waits at the head until every slot is free
    run.succeed("c")
    assert run.take() == ["x"]  # alone
    assert run.take() == []  # d waits behind the barrier
    run.succeed("x")
    assert run.take() == ["d", "f"]


def test_a_retry_holds_its_slot_through_the_backoff() -> None:
    run = Run([step("a", "x", retryPolicy={"maxRetries": 1}), step("b", "x")], parallelism=1)
    assert run.take() == ["a"]
    failure = run.fail("a")
    assert failure.retry_in_s == 0.5 and not failure.final
    assert run.table["a"].state == "pending" and run.table["a"].retry_at == 1_000.5
    assert run.take() == []  # b may not take a's slot while a waits to retry
    run.apply(transitions.start(run.table["a"], run.plans["a"], run.now))
    assert run.table["a"].attempt == 2
    assert run.fail("a").final  # no attempt left
    assert run.table["a"].state == "failed" and run.table["a"].failures == 2
    assert run.take() == ["b"]


def test_pausing_gives_a_waiting_retry_its_slot_back() -> None:
    run = Run([step("a", "x", retryPolicy={"maxRetries": 1}), step("b", "x")], parallelism=1)
    run.take()
    run.fail("a")
    ops = transitions.pause(run.table, context={}, now=run.now)
    run.apply(ops)
    assert run.table["a"].state == "pending" and run.table["a"].retry_at is None
    assert not run.table.holding
    (checkpoint,) = [op for op in ops if type(op).__name__ == "CreateCheckpoint"]
    assert checkpoint.pending_steps == ["a", "b"]  # type: ignore[attr-defined]


def test_an_optional_failure_satisfies_its_dependents_and_renders_empty() -> None:
    run = Run(chain([("o", []), ("d", ["o"])], o={"optional": True}))
    run.take()
    assert run.fail("o").final
    assert run.table.empty == {"o"}
    assert run.take() == ["d"]


def test_a_final_failure_blocks_its_downstream_only() -> None:
    run = Run(chain(DIAMOND), continueOnError=True)
    run.take()
    run.succeed("a")
    run.take()
    assert run.fail("b").final
    assert [r.key for r in run.table.downstream_pending("b")] == ["d"]
    for record in run.table.downstream_pending("b"):
        run.apply(transitions.skip(record, "b", run.now))
    run.succeed("c")
    assert run.take() == []
    run.succeed("e")
    assert run.table.is_finished()
    assert [r.key for r in run.table.failed_for_good()] == ["b"]
    assert run.table["d"].state == "skipped"


def stored(run: Run) -> list[StepInstanceRecord]:
    return list(run.table)


def test_resume_never_hands_out_a_failed_step_or_its_skipped_dependents() -> None:
    """continueOnError: b failed for good and d was skipped; on resume neither is ever
    handed out again, and a pending instance below a failure is found and skipped."""
    before = Run(chain(DIAMOND), continueOnError=True)
    before.take()
    before.succeed("a")
    before.take()
    before.fail("b")
    before.apply(transitions.skip(before.table["d"], "b", before.now))
    records = [replace(r, state="pending") if r.key in "ce" else r for r in stored(before)]
    after = Run(chain(DIAMOND), continueOnError=True, records=records)
    handed_out = []
    while keys := after.take():
        handed_out += keys
        for key in keys:
            after.succeed(key)
    assert sorted(handed_out) == ["c", "e"]
    # a crash between the failure and the skip's commit cannot happen (one transaction),
    # but a pending instance under a failure is recognised whatever left it there
    records = [replace(r, state="pending") if r.key == "d" else r for r in stored(before)]
    again = Run(chain(DIAMOND), continueOnError=True, records=records)
    assert [(r.key, dep) for r, dep in again.table.blocked_pending()] == [("d", "b")]


def test_on_resume_ready_ties_go_by_file_order() -> None:
    pairs = [("z", []), ("m", []), ("a", []), ("k", ["z"])]
    first = Run(chain(pairs), parallelism=1)
    assert first.take() == ["z"]
    first.succeed("z")
    records = stored(first)
    resumed = Run(chain(pairs), parallelism=1, records=records)
    order = []
    while keys := resumed.take():
        order += keys
        resumed.succeed(keys[0])
    assert order == ["m", "a", "k"]  # file order among the ready, k after its dependency


def test_resume_interrupts_running_attempts_and_reruns_them() -> None:
    run = Run(chain(DIAMOND))
    run.take()
    run.succeed("a")
    run.take()  # b, c, e running when the runner dies
    records = stored(run)
    from automatosx.store.records import ExecutionRecord

    execution = ExecutionRecord("e", "w", "n", "executing", {}, "cli", 0, 0.0)
    ops = transitions.resume_execution(
        execution, records, owner="me", checkpoint_id=None, checkpoint_created_by=None, now=2.0
    )
    resumed = Run(chain(DIAMOND), records=records)
    resumed.apply(ops)
    assert {r.key: r.state for r in resumed.table} == {
        "a": "completed", "b": "pending", "c": "pending", "d": "pending", "e": "pending",
    }  # fmt: skip
    assert resumed.table["b"].attempt == 1  # the next attempt is number 2
    interrupted = resumed.table["b"].latest_attempt()
    assert interrupted is not None and interrupted.state == "cancelled"
    assert sorted(resumed.take()) == ["b", "c", "e"]
    assert resumed.table["b"].attempt == 2


def test_an_attempt_moves_to_the_history_when_the_next_one_starts() -> None:
    """The instance holds its latest attempt; the one before goes to the history the
    moment the next begins (a retry, or the rerun of an interrupted attempt)."""
    run = Run([step("a", "x", retryPolicy={"maxRetries": 1})])
    run.take()
    run.fail("a")
    record = run.table["a"]
    ops = transitions.start(record, run.plans["a"], 2.0)
    (history,) = [op.attempt for op in ops if isinstance(op, RecordAttempt)]
    assert (history.attempt, history.state, history.error_kind) == (1, "failed", "provider_error")
    started = next(op.instance for op in ops if isinstance(op, PutInstance))
    assert (started.attempt, started.state, started.error_kind) == (2, "running", None)


def test_recovery_keeps_every_stored_instance_and_fills_missing_steps() -> None:
    run = Run(chain(DIAMOND))
    extra = replace(run.table["b"], key="b[0]", parent_key="b", item_index=0)
    stored_records = [run.table["a"], extra]
    records, ops = recovered_instances("e", run.plans, stored_records)
    assert [r.key for r in records] == ["a", "b[0]", "b", "c", "d", "e"]
    assert [op.instance.key for op in ops if isinstance(op, PutInstance)] == ["b", "c", "d", "e"]


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_random_completion_orders_run_every_step_once_after_its_dependencies(
    pairs: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    first = Run(chain(pairs))
    order = first.table.graph.topological_order
    already = set(order[: data.draw(st.integers(0, len(pairs)))])
    records = [
        replace(r, state="completed", output="x") if r.key in already else r for r in stored(first)
    ]
    run = Run(chain(pairs), records=records)
    finished = set(already)
    handed_out: list[str] = []
    running: list[str] = []
    while not run.table.is_finished():
        for key in run.take():
            assert all(dep in finished for dep in run.table.graph.dependencies[key])
            handed_out.append(key)
            running.append(key)
        assert running, "not finished but nothing runs and nothing is ready"
        key = running.pop(data.draw(st.integers(0, len(running) - 1)))
        run.succeed(key)
        finished.add(key)
    assert len(handed_out) == len(set(handed_out))
    assert set(handed_out) | already == set(order)
    assert not set(handed_out) & already


def test_a_table_without_an_instance_for_a_step_is_refused() -> None:
    run = Run(chain(DIAMOND))
    with pytest.raises(ValueError, match="no instance"):
        InstanceTable(run.table.graph, run.plans, [run.table["a"]], parallelism=1)
