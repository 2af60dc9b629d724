"""Every durable change of an execution, as pure functions: current state in, store operations
out (the new instance records, the attempt history, one typed event per change).

The engine, `control` (pause or cancel with no runner alive, resume) and recovery change
state only through these, and commit what they return in one fenced `store.write`; the
engine applies the same operations to its in-memory table first. Nothing here does I/O or
reads a clock: `now` is given.

A step instance moves through:

    pending --start--> running --succeed--> completed
                          |----fail--> pending (retry_at: backoff)  --start--> running ...
                          |----fail--> failed (no retry left, or the kind never retries)
                          |----interrupt (its runner died)--> cancelled --reopen--> pending
    pending --skip--> skipped (upstream failed, with continueOnError)
    pending | running --cancel--> cancelled (the execution ends failed or cancelled)

An approval gate waits instead of running (`runtime.approvals`): pending --request-->
waiting --decision--> completed | failed; a waiting gate is cancelled like a running one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automatosx.agents.base import ProviderResult
from automatosx.errors import StepError
from automatosx.runtime.instances import is_settled
from automatosx.runtime.plans import StepPlan
from automatosx.store.events import (
    CheckpointCreated,
    CheckpointRestored,
    StepCancelled,
    StepCompleted,
    StepFailed,
    StepRetrying,
    StepSkipped,
    StepStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowResumed,
    WorkflowStarted,
)
from automatosx.store.records import (
    AppendEvent,
    CacheEntry,
    CheckpointCreator,
    ClearControlRequest,
    CreateCheckpoint,
    ExecutionRecord,
    IncrementResumeCount,
    PutCacheEntry,
    PutInstance,
    RecordAttempt,
    RecordCacheHit,
    RecordCriticalPath,
    SetExecutionState,
    SetIdleUntil,
    StepInstanceRecord,
    SubmitToWorkers,
    WriteOp,
)

if TYPE_CHECKING:
    from automatosx.runtime.cache_policy import CacheUse

INTERRUPTED_MESSAGE = "interrupted: the runner stopped during this attempt; it runs again"


# ---- one step instance ----


def new_instance(execution_id: str, plan: StepPlan) -> StepInstanceRecord:
    """A step of the definition before anything ran (its planned agent already shown)."""
    return StepInstanceRecord(
        execution_id=execution_id,
        key=plan.key,
        step_key=plan.key,
        position=plan.position,
        state="pending",
        agent=plan.agent_name,
    )


def start(
    record: StepInstanceRecord,
    plan: StepPlan,
    now: float,
    *,
    agent: str | None = None,
    prompt: str | None = None,
) -> list[WriteOp]:
    """The next attempt begins, served by `agent` (default: the step's fixed agent) with
    `prompt` as rendered for it (None: a prompt that could not render, or a step kind that
    has none); the attempt before it (failed, or interrupted) moves to the instance's
    attempt history, its own prompt with it."""
    agent = agent or plan.agent_name
    started = record.evolve(
        state="running",
        attempt=record.attempt + 1,
        agent=agent,
        provider=plan.first_provider(agent) if agent is not None and agent in plan.agents else None,
        prompt=prompt,
        model=None,
        error_kind=None,
        error_message=None,
        started_at=now,
        completed_at=None,
        duration_ms=None,
        retry_at=None,
        tokens_in=None,
        tokens_out=None,
        cost_usd=None,
    )
    event = StepStarted(record.key, started.attempt, agent)
    ops: list[WriteOp] = [PutInstance(started, record), AppendEvent(event, now)]
    return _to_history(record) + ops if record.attempt else ops


def succeed(
    record: StepInstanceRecord,
    result: ProviderResult,
    now: float,
    *,
    output: Any = None,
    cache: CacheUse | None = None,
) -> list[WriteOp]:
    """The running attempt produced `result`; `output` is its output as the store keeps it
    (what dependents see), when the caller normalised it. With `cache` (a cached step):
    answered from its `hit`, the step is `cached` (the hit counted in the same write);
    answered by the provider, the output becomes the key's entry in the same write."""
    duration = _duration_ms(record, now)
    done = record.evolve(
        state="completed",
        output=result.output if output is None else output,
        provider=result.provider,
        model=result.model,
        completed_at=now,
        duration_ms=duration,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        cost_usd=result.cost_usd,
    )
    if cache is not None and cache.hit is not None:
        hit = cache.hit
        done = done.evolve(cached=True, cached_from=hit.execution_id, saved_usd=hit.cost_usd)
        event = StepCompleted(
            record.key, record.attempt, duration, result.provider,
            cached=True, cached_from=hit.execution_id,
        )  # fmt: skip
        return [PutInstance(done, record), AppendEvent(event, now), RecordCacheHit(hit.key, now)]
    event = StepCompleted(record.key, record.attempt, duration, result.provider)
    ops: list[WriteOp] = [PutInstance(done, record), AppendEvent(event, now)]
    if cache is not None:
        ttl_ms = cache.policy.ttl_ms
        entry = CacheEntry(
            key=cache.key, output=done.output, provider=done.provider, model=done.model,
            agent=done.agent, tokens_in=done.tokens_in, tokens_out=done.tokens_out,
            cost_usd=done.cost_usd, execution_id=done.execution_id, step_key=done.key,
            created_at=now, expires_at=None if ttl_ms is None else now + ttl_ms / 1000,
        )  # fmt: skip
        ops.append(PutCacheEntry(entry))
    return ops


@dataclass(frozen=True)
class Failure:
    """What a failed attempt leads to: the operations, and the retry's delay if any."""

    ops: list[WriteOp]
    retry_in_s: float | None = None
    final: bool = False  # no attempt left: the instance failed for good


def fail(
    record: StepInstanceRecord,
    plan: StepPlan,
    error: StepError,
    now: float,
    *,
    pausing: bool = False,
    delay_s: float | None = None,
) -> Failure:
    """The running attempt failed with `error`. Retried after `delay_s` (the retry rules'
    backoff, computed by the caller so jitter stays out of here) when the rules allow one;
    while pausing, the retry waits for the resume instead."""
    failures = record.failures + 1
    ended = record.evolve(
        failures=failures,
        error_kind=error.kind,
        error_message=error.message,
        completed_at=now,
        duration_ms=_duration_ms(record, now),
    )
    if plan.rules.may_retry(error.kind, failures):
        if pausing:
            return Failure([PutInstance(ended.evolve(state="pending"), record)])
        delay = plan.rules.delay_before_retry(failures) if delay_s is None else delay_s
        if error.retry_after_s:
            delay = max(delay, error.retry_after_s)
        waiting = ended.evolve(state="pending", retry_at=now + delay)
        retrying = StepRetrying(
            record.key, record.attempt + 1, record.attempt, int(delay * 1000), error.kind,
            error.message,
        )  # fmt: skip
        return Failure([PutInstance(waiting, record), AppendEvent(retrying, now)], retry_in_s=delay)
    failed = ended.evolve(state="failed")
    event = StepFailed(
        record.key, record.attempt, error.kind, error.message, _duration_ms(record, now),
        plan.spec.optional,
    )  # fmt: skip
    return Failure([PutInstance(failed, record), AppendEvent(event, now)], final=True)


def skip(record: StepInstanceRecord, failed_step: str, now: float) -> list[WriteOp]:
    """An instance that will never run: a step it needs failed for good."""
    reason = f"upstream step '{failed_step}' failed"
    skipped = record.evolve(
        state="skipped", error_message=reason, completed_at=now, skip_reason="upstream_failed"
    )
    return [
        PutInstance(skipped, record),
        AppendEvent(StepSkipped(record.key, reason, failed_step), now),
    ]


def fan_out(
    parent: StepInstanceRecord, plan: StepPlan, items: list[Any], now: float
) -> list[WriteOp]:
    """A forEach step is ready and its items were evaluated: the list is stored with the
    step (a resume never evaluates it again) and each element becomes an instance,
    `key[i]`, pending. An empty list completes the step with output `[]`."""
    fanned = parent.evolve(state="running", items=items, started_at=now, attempt=0)
    started = StepStarted(parent.key, 1, plan.agent_name, len(items))
    ops: list[WriteOp] = [PutInstance(fanned, parent), AppendEvent(started, now)]
    for index in range(len(items)):
        ops.append(PutInstance(item_instance(parent, plan, index)))
    if not items:
        ops += complete_items(fanned, [], now)
    return ops


def item_instance(parent: StepInstanceRecord, plan: StepPlan, index: int) -> StepInstanceRecord:
    return StepInstanceRecord(
        execution_id=parent.execution_id,
        key=f"{parent.key}[{index}]",
        step_key=parent.step_key,
        position=parent.position,
        state="pending",
        parent_key=parent.key,
        item_index=index,
        agent=plan.agent_name,
    )


def complete_items(parent: StepInstanceRecord, outputs: list[Any], now: float) -> list[WriteOp]:
    """Every item of a forEach step completed: its output is their outputs, by index."""
    duration = _duration_ms(parent, now)
    done = parent.evolve(state="completed", output=outputs, completed_at=now, duration_ms=duration)
    event = StepCompleted(parent.key, 1, duration, None, len(outputs))
    return [PutInstance(done, parent), AppendEvent(event, now)]


def fail_items(
    parent: StepInstanceRecord, plan: StepPlan, item: StepInstanceRecord, now: float
) -> list[WriteOp]:
    """An item failed for good: so does its step (the usual optional / continueOnError
    rules follow); its items that have not started never will."""
    kind = item.error_kind or "provider_error"
    message = f"item {item.item_index} ({item.key}) failed: {item.error_message}"
    failed = parent.evolve(
        state="failed",
        error_kind=kind,
        error_message=message,
        completed_at=now,
        duration_ms=_duration_ms(parent, now),
    )
    event = StepFailed(parent.key, 1, kind, message, _duration_ms(parent, now), plan.spec.optional)
    return [PutInstance(failed, parent), AppendEvent(event, now)]


def skip_by_condition(record: StepInstanceRecord, condition: str, now: float) -> list[WriteOp]:
    """Its `if` was false: skipped, and its dependents run (its placeholders are empty)."""
    skipped = record.evolve(
        state="skipped",
        error_message=f"condition is false: {condition}",
        completed_at=now,
        skip_reason="condition_false",
    )
    return [
        PutInstance(skipped, record),
        AppendEvent(StepSkipped(record.key, "condition_false"), now),
    ]


def fail_before_start(
    record: StepInstanceRecord, plan: StepPlan, error: StepError, now: float
) -> list[WriteOp]:
    """A step that fails before any attempt (its `if` could not be evaluated): failed for
    good, like a final failure, with no attempt."""
    failed = record.evolve(
        state="failed", error_kind=error.kind, error_message=error.message, completed_at=now
    )
    event = StepFailed(record.key, record.attempt, error.kind, error.message, 0, plan.spec.optional)
    return [PutInstance(failed, record), AppendEvent(event, now)]


def cancel(record: StepInstanceRecord, reason: str, now: float) -> list[WriteOp]:
    """Stop an instance for good: its running attempt is killed (and is its latest
    attempt, `cancelled`); a retry it waited for or a start it never had will not happen
    (its last attempt, if any, moves to the history)."""
    cancelled = record.evolve(
        state="cancelled",
        error_kind="cancelled",
        error_message=reason,
        completed_at=now,
        retry_at=None,
    )
    if record.state in ("running", "waiting"):  # waiting: an approval gate's one attempt
        cancelled = cancelled.evolve(duration_ms=_duration_ms(record, now))
        attempt = 1 if record.items is not None else record.attempt  # a forEach: its run
        event = StepCancelled(record.key, attempt, reason)
        return [PutInstance(cancelled, record), AppendEvent(event, now)]
    event = StepCancelled(record.key, record.attempt + 1, reason)
    return [*_to_history(record), PutInstance(cancelled, record), AppendEvent(event, now)]


def interrupt(record: StepInstanceRecord, now: float) -> list[WriteOp]:
    """An attempt its runner left `running` when it died: closed as cancelled; the instance
    runs again (with the next attempt number) whoever takes the execution over."""
    return cancel(record, INTERRUPTED_MESSAGE, now)


def reopen(record: StepInstanceRecord) -> list[WriteOp]:
    """A cancelled (interrupted) instance of an execution that goes on: pending again (its
    interrupted attempt stays its latest until the next one starts)."""
    return [PutInstance(record.evolve(state="pending"), record)]


def release_retry(record: StepInstanceRecord) -> list[WriteOp]:
    """Pausing: a retry waiting out its backoff gives its slot back and happens on resume."""
    return [PutInstance(record.evolve(retry_at=None), record)]


def _instance_in(ops: list[WriteOp]) -> StepInstanceRecord:
    """The instance record a transition's operations leave."""
    return next(op.instance for op in reversed(ops) if isinstance(op, PutInstance))


def _to_history(record: StepInstanceRecord) -> list[WriteOp]:
    """Its latest attempt as a history row, before a change replaces the instance's
    attempt fields (none if it never started)."""
    latest = record.latest_attempt()
    return [] if latest is None else [RecordAttempt(latest)]


# ---- the execution ----


def create_instances(execution_id: str, plans: Iterable[StepPlan]) -> list[WriteOp]:
    """A new execution's instances: every step of the definition, pending (stored with the
    execution itself, so no reader ever sees it without them)."""
    return [PutInstance(new_instance(execution_id, plan)) for plan in plans]


def submit(priority: int, now: float) -> list[WriteOp]:
    """A new execution waits for `ax worker` processes: `queued`, with its first turn."""
    return [SetExecutionState("queued", None, now), SubmitToWorkers(priority)]


def open_execution(
    *,
    workflow_name: str,
    version: str,
    triggered_by: str,
    priority: int,
    steps: int,
    parallelism: int,
    owner: str,
    workdir: str | None,
    now: float,
) -> list[WriteOp]:
    """The runner of a new execution begins: `executing`, `workflow_started`."""
    event = WorkflowStarted(
        workflow_name, version, triggered_by, priority, steps, parallelism, owner, workdir
    )
    return [SetExecutionState("executing", None, now), AppendEvent(event, now)]


def resume_execution(
    execution: ExecutionRecord,
    instances: Iterable[StepInstanceRecord],
    *,
    owner: str,
    checkpoint_id: str | None,
    checkpoint_created_by: str | None,
    now: float,
) -> list[WriteOp]:
    """Take a paused or orphaned execution over: attempts left running are interrupted,
    interrupted instances are pending again, and the execution is executing."""
    ops: list[WriteOp] = [IncrementResumeCount(), ClearControlRequest()]
    if execution.idle_until is not None:  # a worker let it go while only gates waited
        ops.append(SetIdleUntil(None))
    rerun: list[str] = []
    completed = 0
    for record in instances:
        if record.state == "running" and record.items is None:  # not a fanned-out step
            rerun.append(record.key)
            closed = interrupt(record, now)
            ops += closed + reopen(_instance_in(closed))
        elif record.state == "cancelled":
            ops += reopen(record)
        elif record.state == "completed":
            completed += 1
    ops.append(
        AppendEvent(
            CheckpointRestored(checkpoint_id, checkpoint_created_by, "step records", completed),
            now,
        )
    )
    resumed = WorkflowResumed(
        execution.resume_count + 1, execution.state, execution.lease_owner, owner, sorted(rerun)
    )
    ops.append(AppendEvent(resumed, now))
    ops.append(SetExecutionState("executing", None, now))
    return ops


def checkpoint(
    instances: Iterable[StepInstanceRecord],
    *,
    state: str,
    context: Mapping[str, Any],
    created_by: CheckpointCreator,
    label: str | None,
    now: float,
) -> list[WriteOp]:
    """A snapshot `{state, context, completedSteps, pendingSteps}` of the instances."""
    completed, pending = _completed_and_pending(instances)
    return [
        CreateCheckpoint(
            state=state,
            context=dict(context),
            completed_steps=completed,
            pending_steps=pending,
            label=label,
            created_by=created_by,
        ),
        AppendEvent(CheckpointCreated(created_by, label, state, len(completed), len(pending)), now),
    ]


def pause(
    instances: Iterable[StepInstanceRecord],
    *,
    context: Mapping[str, Any],
    now: float,
    direct: bool = False,
) -> list[WriteOp]:
    """The execution pauses (a runner at a step boundary, or `pause` itself when no runner
    is alive: `direct`, and the attempts a dead runner left running are interrupted):
    retries waiting for their backoff happen on resume instead, a `pause` checkpoint is
    written, the state is `paused`."""
    records: list[StepInstanceRecord] = []
    ops: list[WriteOp] = []
    for record in instances:
        if direct and record.state == "running" and record.items is None:
            closed = interrupt(record, now)
            ops += closed
            record = _instance_in(closed)
        elif record.state == "pending" and record.retry_at is not None:
            ops += release_retry(record)
            record = record.evolve(retry_at=None)
        records.append(record)
    completed, pending = _completed_and_pending(records)
    ops += checkpoint(
        records, state="paused", context=context, created_by="pause", label="pause", now=now
    )
    ops.append(SetExecutionState("paused", None, now))
    ops.append(
        AppendEvent(WorkflowPaused(len(completed), len(pending), True if direct else None), now)
    )
    ops.append(ClearControlRequest())
    return ops


def complete(
    instances: Iterable[StepInstanceRecord],
    *,
    duration_ms: int,
    dependencies: Mapping[str, Sequence[str]],
    now: float,
) -> list[WriteOp]:
    """The execution completes; its critical path over `dependencies` (the file's steps)
    is stored with it, for the statistics."""
    count = sum(1 for record in instances if record.parent_key is None)  # the file's steps
    return [
        SetExecutionState("completed", None, now),
        AppendEvent(WorkflowCompleted(duration_ms, count), now),
        ClearControlRequest(),
        RecordCriticalPath(dependencies),
    ]


def fail_execution(
    instances: Iterable[StepInstanceRecord],
    *,
    error: str,
    now: float,
    failed_steps: list[str] | None = None,
    step_reason: str | None = None,
) -> list[WriteOp]:
    """The execution fails: every instance not yet settled is cancelled."""
    ops = _cancel_unsettled(instances, step_reason or error, now)
    ops.append(SetExecutionState("failed", error, now))
    ops.append(AppendEvent(WorkflowFailed(error, failed_steps), now))
    ops.append(ClearControlRequest())
    return ops


def cancel_execution(
    instances: Iterable[StepInstanceRecord],
    *,
    reason: str,
    now: float,
    step_reason: str = "workflow cancelled",
    previous: str | None = None,
) -> list[WriteOp]:
    """The execution is cancelled: every instance not yet settled is cancelled."""
    ops = _cancel_unsettled(instances, step_reason, now)
    ops.append(SetExecutionState("cancelled", reason, now))
    ops.append(AppendEvent(WorkflowCancelled(reason, previous), now))
    ops.append(ClearControlRequest())
    return ops


# ---- helpers ----


def _cancel_unsettled(
    instances: Iterable[StepInstanceRecord], reason: str, now: float
) -> list[WriteOp]:
    ops: list[WriteOp] = []
    for record in instances:
        if is_settled(record):
            continue
        if record.state in ("running", "waiting") or record.retry_at is not None:
            ops += cancel(record, reason, now)
        else:
            ops += cancel(record, f"not started: {reason}", now)
    return ops


def _completed_and_pending(
    instances: Iterable[StepInstanceRecord],
) -> tuple[list[str], list[str]]:
    completed: list[str] = []
    pending: list[str] = []
    for record in instances:
        if record.state == "completed":
            completed.append(record.key)
        elif not is_settled(record) or record.state == "cancelled":
            pending.append(record.key)
    return completed, pending


def _duration_ms(record: StepInstanceRecord, now: float) -> int:
    return round(max(0.0, now - (record.started_at or now)) * 1000)
