"""Plain records the store returns and the write operations it applies.

Timestamps are epoch seconds as floats (`time.time()`); durations are integer milliseconds.
JSON-able values (`context`, `output`, `data`) are Python objects, serialised by the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
StepState = Literal["pending", "running", "completed", "failed", "skipped", "cancelled"]
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
]
ControlRequest = Literal["pause", "cancel"]
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

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class StepExecutionRecord:
    """One attempt of one step. The latest attempt of a step is its current state."""

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


# ---- fenced write operations, applied together in one transaction by `Store.write` ----


@dataclass(frozen=True)
class SetExecutionState:
    state: ExecutionState
    error: str | None = None
    at: float | None = None  # sets started_at on first start, completed_at on a terminal state


@dataclass(frozen=True)
class SetContext:
    context: dict[str, Any]


@dataclass(frozen=True)
class StartStepAttempt:
    step_key: str
    attempt: int
    agent: str | None
    provider: str | None
    started_at: float


@dataclass(frozen=True)
class FinishStepAttempt:
    """Ends an attempt (completed/failed/cancelled), or records a never-started step
    (skipped/cancelled) when no attempt row exists yet."""

    step_key: str
    attempt: int
    state: StepState
    completed_at: float
    output: Any = None
    error_kind: str | None = None
    error_message: str | None = None
    provider: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class AppendEvent:
    type: EventType
    step_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float | None = None


@dataclass(frozen=True)
class CreateCheckpoint:
    state: str
    context: dict[str, Any]
    completed_steps: list[str]
    pending_steps: list[str]
    label: str | None
    created_by: CheckpointCreator


@dataclass(frozen=True)
class IncrementResumeCount:
    pass


@dataclass(frozen=True)
class ClearControlRequest:
    pass


WriteOp = (
    SetExecutionState
    | SetContext
    | StartStepAttempt
    | FinishStepAttempt
    | AppendEvent
    | CreateCheckpoint
    | IncrementResumeCount
    | ClearControlRequest
)
