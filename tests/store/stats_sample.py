"""Executions with known timestamps for the analytics tests, written through the store's own
write operations (the runtime's transitions, as the engine writes them), so every figure of
`ax workflow stats` has an exact expected value.

`seed(store, t)` writes, for the workflow `review-flow` (parse -> lint, scan, review (a
forEach) -> report; lint retries twice), with `t` a whole second an hour ago:

- `old`: completed 30 days before `t`, with a failure: outside a 7-day window.
- `first` (completed, 5 s, started at t): parse 1 s (10/1 tokens, $0.10); lint fails with a
  timeout after 500 ms (an attempt billed 5/0 tokens, $0.02), then succeeds in 1 s (1.5 s in
  all); scan 3 s; review fans out to 3 items at t+1: review[0] 1 s, review[1] 2 s,
  review[2] rate-limited after 500 ms then 500 ms (the step spans 2.5 s); report 500 ms
  (3/2 tokens, $0.05). Critical path parse + scan + report = 4.5 s: efficiency 0.9.
  Two checkpoints that took 1.5 and 0.5 ms to write.
- `second` (failed, 3 s, started at t+10): parse 250 ms; lint times out three times (250,
  500, 500 ms: 1.25 s) and fails for good at t+12.5; scan fails once (provider_error, a
  call billed 7/1 tokens, $0.03) and is cancelled while it waits for its retry (which
  closes that attempt a second time: it must count once); review fans out to one item,
  rate-limited twice (250 + 250 ms), so the step fails at t+11; report never starts. One
  checkpoint from before checkpoints were timed (write_ms NULL).
- `third` (completed, 500 ms, started at t+20): parse, lint, scan 100 ms each, one item of
  200 ms, report 100 ms. Critical path 400 ms: efficiency 0.8. No checkpoint.
- `running` (started at t+30): its runner died during parse (interrupted at t+31, the
  step pending again, to run on a resume).

and for `other-flow` (one step): `solo`, completed in 1 s (efficiency 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.runtime import transitions
from automatosx.store.base import Store
from automatosx.store.records import (
    CreateCheckpoint,
    PutInstance,
    RecordAttempt,
    RecordCriticalPath,
    SetExecutionState,
    WriteOp,
)
from tests.store.steps import Steps

DAY = 86_400.0
LINT_TIMEOUT = "step lint timed out after {ms} ms"
RATE_LIMITED = "rate limited (request 3f2a9c1e-8b7d-4c6e-9f01-23456789abcd, trace 0a1b2c3d4e5f)"
SCAN_FAILED = "exit status 1: planned failure"


def review_flow() -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "name": "review-flow",
            "steps": [
                {"key": "parse", "agent": "backend", "prompt": "Parse"},
                {
                    "key": "lint", "agent": "quality", "prompt": "Lint {{parse}}",
                    "dependencies": ["parse"], "retryPolicy": {"maxRetries": 2},
                },
                {
                    "key": "scan", "agent": "security", "prompt": "Scan {{parse}}",
                    "dependencies": ["parse"], "retryPolicy": {"maxRetries": 1},
                },
                {
                    "key": "review", "agent": "quality", "prompt": "Review {{file}}",
                    "dependencies": ["parse"], "retryPolicy": {"maxRetries": 1},
                    "forEach": {"items": "context.files", "as": "file"},
                },
                {
                    "key": "report", "agent": "writer", "prompt": "Report",
                    "dependencies": ["lint", "scan", "review"],
                },
            ],
        }
    )  # fmt: skip


def other_flow() -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {"name": "other-flow", "steps": [{"key": "solo", "agent": "backend", "prompt": "x"}]}
    )


class Run:
    """One execution being written: its lease and its instances (`Steps`), with forEach
    items and checkpoints beside the sample's transitions."""

    def __init__(self, store: Store, definition: WorkflowDefinition, files: list[str]) -> None:
        workflow = store.upsert_workflow(definition)
        self.store = store
        self.definition = definition
        self.execution, self.lease = store.create_execution(
            workflow_id=workflow.id, context={"files": files}, triggered_by="cli",
            priority=0, owner="host:1:stats", lease_seconds=3600.0,
        )  # fmt: skip
        self.steps = Steps(self.execution.id, definition)
        store.write(self.lease, self.steps.created())

    @property
    def id(self) -> str:
        return self.execution.id

    def write(self, *ops: WriteOp | list[WriteOp]) -> None:
        flat: list[WriteOp] = []
        for op in ops:
            flat.extend(op if isinstance(op, list) else [op])
        self.store.write(self.lease, flat)

    def state(self, state: str, at: float) -> None:
        """The execution's new state; completing stores its critical path, as the engine's
        completing write does."""
        ops: list[WriteOp] = [SetExecutionState(state, at=at)]  # type: ignore[arg-type]
        if state == "completed":
            ops.append(RecordCriticalPath({s.key: s.dependencies for s in self.definition.steps}))
        self.write(ops)

    def ran(self, key: str, start: float, end: float, **usage: Any) -> None:
        self.write(self.steps.start(key, start), self.steps.succeed(key, end, **usage))

    def failed(self, key: str, start: float, end: float, kind: str, message: str) -> None:
        self.write(self.steps.start(key, start), self.steps.fail(key, end, kind, message))

    def fan_out(self, key: str, at: float, items: int) -> None:
        steps = self.steps
        plan = steps.plans[key]
        ops = transitions.fan_out(steps[key], plan, list(range(items)), at)
        for op in ops:
            if isinstance(op, PutInstance):
                steps.records[op.instance.key] = op.instance
                steps.plans.setdefault(op.instance.key, plan)
        self.write(ops)

    def items_done(self, key: str, at: float, items: int) -> None:
        steps = self.steps
        ops = transitions.complete_items(steps[key], list(range(items)), at)
        steps.records[key] = ops[0].instance  # type: ignore[union-attr]
        self.write(ops)

    def items_failed(self, key: str, item: str, at: float) -> None:
        steps = self.steps
        ops = transitions.fail_items(steps[key], steps.plans[key], steps[item], at)
        steps.records[key] = ops[0].instance  # type: ignore[union-attr]
        self.write(ops)

    def interrupted(self, key: str, at: float) -> None:
        """Its runner died during the attempt; taken over, the instance is pending again."""
        steps = self.steps
        closed = transitions.interrupt(steps[key], at)
        steps.records[key] = closed[0].instance  # type: ignore[union-attr]
        reopened = transitions.reopen(steps[key])
        steps.records[key] = reopened[0].instance  # type: ignore[union-attr]
        self.write(closed, reopened)

    def bill(self, key: str, **usage: Any) -> None:
        """What the running attempt of `key` cost (a provider that charges for a call
        that then fails), recorded before it ends."""
        before = self.steps[key]
        after = self.steps.records[key] = before.evolve(**usage)
        self.write(PutInstance(after, before))

    def checkpoint(self) -> None:
        self.write(
            CreateCheckpoint(
                state="executing", context={}, completed_steps=[], pending_steps=[],
                label="periodic", created_by="automatic",
            )
        )  # fmt: skip


@dataclass
class Seeded:
    t: float
    old: str
    first: str
    second: str
    third: str
    running: str
    solo: str


def set_checkpoint_costs(store: Store, execution_id: str, costs: list[float | None]) -> None:
    """What writing each of the execution's checkpoints took (oldest first), as the store
    would have measured it (None: written before checkpoints were timed)."""
    checkpoints = sorted(store.list_checkpoints(execution_id), key=lambda c: c.created_at)
    assert len(checkpoints) == len(costs)
    with store._transaction() as db:  # type: ignore[attr-defined]
        for checkpoint, cost in zip(checkpoints, costs, strict=True):
            db.execute(
                "UPDATE workflow_checkpoints SET write_ms = ? WHERE id = ?", (cost, checkpoint.id)
            )


def seed(store: Store, t: float) -> Seeded:
    flow = review_flow()

    old = Run(store, flow, ["a.py"])
    o = t - 30 * DAY
    old.state("executing", o)
    old.failed("lint", o, o + 1, "provider_error", "an old failure 42")
    old.ran("lint", o + 1, o + 2)
    old.state("completed", o + 3)

    first = Run(store, flow, ["a.py", "b.py", "c.py"])
    first.state("executing", t)
    first.ran("parse", t, t + 1, tokens_in=10, tokens_out=1, cost_usd=0.10)
    first.failed("lint", t + 1, t + 1.5, "timeout", LINT_TIMEOUT.format(ms=500))
    start_again = first.steps.start("lint", t + 2)
    billed = next(op.attempt for op in start_again if isinstance(op, RecordAttempt))
    first.write(
        start_again, RecordAttempt(replace(billed, tokens_in=5, tokens_out=0, cost_usd=0.02))
    )
    first.write(first.steps.succeed("lint", t + 3))
    first.checkpoint()
    first.write(first.steps.start("scan", t + 1))
    first.fan_out("review", t + 1, 3)
    first.ran("review[0]", t + 1, t + 2)
    first.ran("review[1]", t + 1, t + 3)
    first.failed("review[2]", t + 2, t + 2.5, "rate_limit", RATE_LIMITED)
    first.ran("review[2]", t + 3, t + 3.5)
    first.items_done("review", t + 3.5, 3)
    first.write(first.steps.succeed("scan", t + 4))
    first.ran("report", t + 4, t + 4.5, tokens_in=3, tokens_out=2, cost_usd=0.05)
    first.checkpoint()
    first.state("completed", t + 5)
    set_checkpoint_costs(store, first.id, [1.5, 0.5])

    second = Run(store, flow, ["a.py"])
    s = t + 10
    second.state("executing", s)
    second.ran("parse", s, s + 0.25)
    second.failed("lint", s + 0.25, s + 0.5, "timeout", LINT_TIMEOUT.format(ms=250))
    second.write(second.steps.start("scan", s + 0.25))
    second.bill("scan", tokens_in=7, tokens_out=1, cost_usd=0.03)
    second.write(second.steps.fail("scan", s + 0.75, "provider_error", SCAN_FAILED))
    second.fan_out("review", s + 0.25, 1)
    second.failed("review[0]", s + 0.25, s + 0.5, "rate_limit", RATE_LIMITED)
    second.failed("review[0]", s + 0.75, s + 1, "rate_limit", RATE_LIMITED)
    second.items_failed("review", "review[0]", s + 1)
    second.failed("lint", s + 1, s + 1.5, "timeout", LINT_TIMEOUT.format(ms=500))
    second.failed("lint", s + 2, s + 2.5, "timeout", LINT_TIMEOUT.format(ms=500))
    assert second.steps["lint"].state == "failed"  # no retry left
    second.checkpoint()
    for key in ("scan", "report"):  # as the execution's failure cancels them
        second.write(second.steps.cancel(key, "workflow failed", s + 2.5))
    second.state("failed", s + 3)
    set_checkpoint_costs(store, second.id, [None])

    third = Run(store, flow, ["a.py"])
    h = t + 20
    third.state("executing", h)
    third.ran("parse", h, h + 0.1)
    third.ran("lint", h + 0.1, h + 0.2)
    third.ran("scan", h + 0.1, h + 0.2)
    third.fan_out("review", h + 0.1, 1)
    third.ran("review[0]", h + 0.1, h + 0.3)
    third.items_done("review", h + 0.3, 1)
    third.ran("report", h + 0.3, h + 0.4)
    third.state("completed", h + 0.5)

    running = Run(store, flow, ["a.py"])
    running.state("executing", t + 30)
    running.write(running.steps.start("parse", t + 30))
    running.interrupted("parse", t + 31)  # its runner died: no error, it runs again

    solo = Run(store, other_flow(), [])
    solo.state("executing", t + 40)
    solo.ran("solo", t + 40, t + 41)
    solo.state("completed", t + 41)
    return Seeded(t, old.id, first.id, second.id, third.id, running.id, solo.id)
