"""Plain records the store returns and the write operations it applies.

Timestamps are epoch seconds as floats (`time.time()`); durations are integer milliseconds.
JSON-able values (`context`, `output`, `data`) are Python objects, serialised by the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from automatosx.definition.models import WorkflowDefinition
    from automatosx.definition.subworkflows import Subworkflow
    from automatosx.store.events import Event

ExecutionState = Literal[
    "idle",
    "parsing",
    "validating",
    "building_graph",
    "scheduling",
    "executing",
    "awaiting_completion",
    "creating_checkpoint",
    "restoring_checkpoint",
    "aggregating_results",
    "completed",
    "failed",
    "paused",
    "cancelled",
    "queued",  # submitted for `ax worker` processes, none has taken it yet (PostgreSQL)
]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
StepState = Literal["pending", "running", "waiting", "completed", "failed", "skipped", "cancelled"]
EventType = Literal[
    "workflow_started",
    "workflow_completed",
    "workflow_failed",
    "workflow_paused",
    "workflow_resumed",
    "workflow_cancelled",
    "step_started",
    "step_completed",
    "step_failed",
    "step_retrying",
    "step_skipped",
    "step_cancelled",
    "checkpoint_created",
    "checkpoint_restored",
    "approval_requested",
    "approval_granted",
    "approval_rejected",
]
ControlRequest = Literal["pause", "cancel"]
# condition_false: its `if` was false (dependents still run); upstream_failed: a step it
# needs failed for good (dependents are skipped too).
SkipReason = Literal["condition_false", "upstream_failed"]
CheckpointCreator = Literal["automatic", "user", "pause"]


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    name: str
    version: str
    description: str | None
    author: str | None
    tags: list[str]
    definition: dict[str, Any]  # the file form (camelCase), loads back with WorkflowDefinition
    created_at: float
    updated_at: float
    total_executions: int = 0
    successful_executions: int = 0
    failed_executions: int = 0
    avg_duration_ms: float | None = None

    @property
    def success_rate(self) -> float | None:
        finished = self.total_executions
        return None if finished == 0 else self.successful_executions / finished


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    workflow_id: str
    workflow_name: str
    state: ExecutionState
    context: dict[str, Any]
    triggered_by: str
    priority: int
    created_at: float
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: int | None = None
    resume_count: int = 0
    error: str | None = None
    parent_execution_id: str | None = None
    lease_owner: str | None = None  # "host:pid:uuid" of the runner holding the lease
    lease_expires_at: float | None = None
    lease_epoch: int = 0  # fencing token: bumped on every acquire
    control_request: ControlRequest | None = None  # set by `pause`/`cancel` from any process
    workdir: str | None = None  # where its steps run (resume and recover run them there too)
    queue_name: str | None = None  # submitted: `ax worker` processes run it (None: a shell)
    idle_until: float | None = None  # let go while only gates wait: nothing before this

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class StepInstanceRecord:
    """One step instance, the durable unit of an execution: a step of the definition
    (`key` = its step key) or an instance created at run time (`review[3]`, with
    `parent_key` "review" and `item_index` 3). It holds the instance's whole state, so
    readiness, checkpoints, recovery and every reader derive from these records alone.

    `attempt` counts the attempts started, `failures` the failed ones (the retry budget).
    The provider, model, error, times and usage describe the LATEST attempt (each earlier
    one is a row of `workflow_step_executions`, moved there when the next began: a fact is
    kept in one place), and so does `prompt`: the attempt's rendered prompt (None for an
    approval gate, a sub-workflow step, or an attempt stored before prompts were). A
    `pending` instance with `retry_at` is waiting out a retry's backoff (it holds its slot
    until then); a `waiting` one is an approval gate waiting for its decision (it holds no
    slot)."""

    execution_id: str
    key: str
    step_key: str
    position: int  # the step's index in the file: the order every reader lists them in
    state: StepState
    parent_key: str | None = None
    item_index: int | None = None
    attempt: int = 0
    failures: int = 0
    agent: str | None = None
    provider: str | None = None
    model: str | None = None
    output: Any = None
    error_kind: str | None = None
    error_message: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: int | None = None
    retry_at: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    skip_reason: SkipReason | None = None  # why a `skipped` instance will not run
    items: list[Any] | None = None  # a forEach step's list, stored once when it fans out
    child_execution_id: str | None = None  # a sub-workflow step's child execution
    cached: bool = False  # its output came from the result cache (no provider call)
    cached_from: str | None = None  # the execution whose call produced that output
    saved_usd: float | None = None  # what that call cost, which this one did not
    prompt: str | None = None  # the latest attempt's rendered prompt (stored masked)

    def latest_attempt(self) -> StepExecutionRecord | None:
        """The instance's latest attempt as an attempt record (None before the first)."""
        if self.attempt == 0:
            return None
        state = _ATTEMPT_STATES.get(self.state)
        if state is None:  # pending again: after a failure, or an interruption
            state = "cancelled" if self.error_kind == "cancelled" else "failed"
        return StepExecutionRecord(
            execution_id=self.execution_id,
            step_key=self.key,
            attempt=self.attempt,
            state=state,
            agent=self.agent,
            provider=self.provider,
            model=self.model,
            output=self.output if state == "completed" else None,
            error_kind=self.error_kind,
            error_message=self.error_message,
            started_at=self.started_at,
            completed_at=self.completed_at,
            duration_ms=self.duration_ms,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_usd=self.cost_usd,
            prompt=self.prompt,
        )

    def evolve(self, **changes: Any) -> StepInstanceRecord:
        """A copy with `changes` applied: `dataclasses.replace` without running `__init__`
        again (1.4 against 8 us; every step makes three of them)."""
        if not changes.keys() <= _INSTANCE_FIELDS:
            unknown = sorted(changes.keys() - _INSTANCE_FIELDS)
            raise TypeError(f"StepInstanceRecord has no field {unknown}")
        values = self.__dict__.copy()
        values.update(changes)
        return StepInstanceRecord.from_fields(values)

    @staticmethod
    def from_fields(values: dict[str, Any]) -> StepInstanceRecord:
        """A record made of `values`, which must name every field, without the frozen
        dataclass's `__init__` (one `object.__setattr__` per field: 18 against 4 us a row,
        most of a 10,000-step `status`)."""
        record = object.__new__(StepInstanceRecord)
        object.__setattr__(record, "__dict__", values)
        return record


_INSTANCE_FIELDS = frozenset(StepInstanceRecord.__dataclass_fields__)
_ATTEMPT_STATES: dict[str, StepState] = {
    "running": "running",
    "waiting": "waiting",  # an approval gate: its one attempt is the wait
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class StepExecutionRecord:
    """One attempt of one step instance: a row of the history, or (`latest_attempt`) the
    latest one, which the instance record itself holds."""

    execution_id: str
    step_key: str
    attempt: int  # 1-based
    state: StepState
    agent: str | None = None
    provider: str | None = None
    model: str | None = None
    output: Any = None
    error_kind: str | None = None
    error_message: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    prompt: str | None = None  # as rendered for this attempt, secrets masked once stored


@dataclass(frozen=True)
class CheckpointRecord:
    id: str
    execution_id: str
    state: str
    context: dict[str, Any]
    completed_steps: list[str]
    pending_steps: list[str]
    label: str | None
    created_by: CheckpointCreator
    created_at: float
    size_bytes: int


@dataclass(frozen=True)
class EventRecord:
    id: int  # strictly increasing per execution
    execution_id: str
    type: EventType
    step_key: str | None
    data: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Lease:
    """Proof that a runner owns an execution; every fenced write carries it."""

    execution_id: str
    owner: str
    epoch: int
    expires_at: float


@dataclass(frozen=True)
class PruneResult:
    checkpoints: int
    events: int


ApprovalDecision = Literal["approved", "rejected"]
OnTimeout = Literal["reject", "approve"]  # what decides a gate whose deadline passed


@dataclass(frozen=True)
class ApprovalRecord:
    """One approval gate that opened (a row of `workflow_approvals`): what it asks, its
    absolute deadline (`expires_at`, None: no timeout) and, once given, the decision. The
    decision is written by whoever gives it (a person's `ax workflow approve`, or the
    deadline) and applied to the step instance by the execution's runner."""

    execution_id: str
    step_key: str  # the instance key: `gate`, or `gate[2]` inside a forEach
    message: str | None
    requested_at: float
    expires_at: float | None
    on_timeout: OnTimeout
    decision: ApprovalDecision | None = None
    decided_by: str | None = None
    comment: str | None = None
    decided_at: float | None = None


# ---- fenced write operations, applied together in one transaction by `Store.write` ----
# (The three a step writes, PutInstance, RecordAttempt and AppendEvent, are slotted rather
# than frozen dataclasses: three times cheaper to build. Treat every operation as a value.)


@dataclass(frozen=True)
class SetExecutionState:
    state: ExecutionState
    error: str | None = None
    at: float | None = None  # sets started_at on first start, completed_at on a terminal state


@dataclass(frozen=True)
class SetContext:
    context: dict[str, Any]


@dataclass(slots=True)
class PutInstance:
    """Store a step instance's whole record. `previous` is the record it replaces, when the
    writer knows it: the store then updates only the columns that differ (a step's start
    and end change a few of its 24 columns; rewriting all of them was a quarter of a
    chain step's cost)."""

    instance: StepInstanceRecord
    previous: StepInstanceRecord | None = None


@dataclass(slots=True)
class RecordAttempt:
    """Append a finished attempt to the instance's history."""

    attempt: StepExecutionRecord


@dataclass(slots=True)
class AppendEvent:
    event: Event
    at: float | None = None

    @property
    def type(self) -> EventType:
        return self.event.type

    @property
    def step_key(self) -> str | None:
        return self.event.step_key


@dataclass(frozen=True)
class CreateCheckpoint:
    state: str
    context: dict[str, Any]
    completed_steps: list[str]
    pending_steps: list[str]
    label: str | None
    created_by: CheckpointCreator


@dataclass(frozen=True)
class OpenApproval:
    """An approval gate opens: its row of `workflow_approvals`, written with the instance
    moving to `waiting`, so a gate a reader sees waiting can always be decided."""

    step_key: str
    message: str
    requested_at: float
    expires_at: float | None
    on_timeout: OnTimeout


@dataclass(frozen=True)
class CacheEntry:
    """One answer of the result cache (a row of `workflow_cache`): the output of a
    successful, schema-valid call, who served it and what it cost, and which execution's
    step produced it. `expires_at` None: it never expires (`ax cache prune` removes it)."""

    key: str  # SHA-256 (hex) of what decides the answer: see `runtime.cache.cache_key`
    output: Any
    provider: str | None
    model: str | None
    agent: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    execution_id: str | None
    step_key: str | None
    created_at: float
    expires_at: float | None = None
    hits: int = 0
    last_hit_at: float | None = None

    def is_live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class PutCacheEntry:
    """Store (or overwrite) an answer, in the transaction that completes the step that
    produced it: no reader ever sees an entry whose step is not completed. It also ends
    the key's lease (`store.cache`)."""

    entry: CacheEntry


@dataclass(frozen=True)
class RecordCacheHit:
    """A step was answered from the entry: count it, in the write that completes the step."""

    key: str
    at: float


@dataclass(frozen=True)
class CreateChildExecution:
    """A sub-workflow step starts its child: the child's execution (leased to its runner
    from the start, its step instances with it, its parent the writing execution), written
    in the transaction that moves the step to `running` and names the child on it. A
    recovery therefore always finds the child the step started; it never starts another."""

    execution_id: str
    definition: WorkflowDefinition
    subworkflows: Mapping[str, Subworkflow]  # the files the child runs in turn
    context: dict[str, Any]
    triggered_by: str
    priority: int
    workdir: str | None
    lease_owner: str
    lease_expires_at: float
    instances: Sequence[WriteOp]  # the child's fresh step instances


@dataclass(frozen=True)
class SetSubworkflows:
    """The sub-workflow files an execution may run, stored with it (as its definition is),
    so a resume never reads the files again."""

    subworkflows: Mapping[str, Subworkflow]


@dataclass(frozen=True)
class IncrementResumeCount:
    pass


@dataclass(frozen=True)
class SetIdleUntil:
    """The time a turn of a submitted execution is scheduled for with no event to cause it
    (the earliest retry, gate deadline or workflow timeout; None: none), so a turn that
    finds the same time schedules no second one (`runtime.turn`)."""

    until: float | None


@dataclass(frozen=True)
class SubmitToWorkers:
    """The execution is `ax worker` processes' to run: marked so, and its first turn deferred
    in this same write (PostgreSQL: procrastinate's queue, `store.queue_jobs`)."""

    priority: int


@dataclass(frozen=True)
class RecordCriticalPath:
    """Store the completed execution's critical path (`executions.critical_path_ms`): the
    longest chain of `dependencies` (step key -> the keys it depends on), each step weighed
    by the sum of its attempts' durations. The store weighs them from the rows this same
    write leaves (the earlier attempts live only there), so it is applied after them."""

    dependencies: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class ClearControlRequest:
    pass


WriteOp = (
    SetExecutionState
    | SetContext
    | PutInstance
    | RecordAttempt
    | AppendEvent
    | CreateCheckpoint
    | IncrementResumeCount
    | SubmitToWorkers
    | SetIdleUntil
    | RecordCriticalPath
    | ClearControlRequest
    | OpenApproval
    | PutCacheEntry
    | RecordCacheHit
    | CreateChildExecution
    | SetSubworkflows
)
