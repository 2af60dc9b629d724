"""The audit log's vocabulary: one dataclass per event type (SPEC section 5), and its JSON.

A transition builds these; the store writes `event.data()` as the event's `data` column;
readers (the live view, the read model) get the same keys back. Field names are snake_case
here and camelCase in `data()`, the contract's form (`failed_attempt` -> `failedAttempt`).
A field whose metadata says `omit_none` is left out of `data()` while it is None (keys that
only some occurrences carry, such as `failedSteps` or `direct`); every other field is always
present, null included, so a reader can rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from automatosx.store.records import EventType

_OMIT_NONE = {"omit_none": True}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_LAYOUTS: dict[type, tuple[tuple[str, str, bool], ...]] = {}


def _layout(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(field, JSON key, omit when None) per field of an event type, computed once."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple(
            (f.name, _camel(f.name), bool(f.metadata.get("omit_none")))
            for f in fields(cls)
            if f.name != "step_key"
        )
    return layout


class Event:
    """What every event type shares: its `type`, the step it is about, its `data()`.

    Event types are slotted, not frozen, dataclasses: a step builds two of them, and a
    frozen dataclass costs three times as much to build. Treat them as values."""

    __slots__ = ()
    type: ClassVar[EventType]
    step_key: str | None  # the instance a step event is about (a field of those)

    def data(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        layout = _LAYOUTS.get(type(self)) or _layout(type(self))
        for name, key, omit_none in layout:
            value = getattr(self, name)
            if value is None and omit_none:
                continue
            document[key] = value
        return document


class ExecutionEvent(Event):
    """An event about the whole execution: no step."""

    __slots__ = ()
    step_key = None


# ---- the execution ----


@dataclass(slots=True)
class WorkflowStarted(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_started"
    workflow_name: str
    version: str
    triggered_by: str
    priority: int
    steps: int
    parallelism: int
    owner: str
    workdir: str | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(slots=True)
class WorkflowCompleted(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_completed"
    duration_ms: int
    steps: int


@dataclass(slots=True)
class WorkflowFailed(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_failed"
    error: str
    failed_steps: list[str] | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(slots=True)
class WorkflowCancelled(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_cancelled"
    error: str
    previous: str | None = field(default=None, metadata=_OMIT_NONE)  # a direct cancel


@dataclass(slots=True)
class WorkflowPaused(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_paused"
    completed_steps: int
    pending_steps: int
    direct: bool | None = field(default=None, metadata=_OMIT_NONE)  # no runner was alive


@dataclass(slots=True)
class WorkflowResumed(ExecutionEvent):
    type: ClassVar[EventType] = "workflow_resumed"
    resume_count: int
    previous_state: str
    previous_owner: str | None
    owner: str
    rerun_steps: list[str]


# ---- steps (step_key is the instance key: `review` or `review[3]`) ----


@dataclass(slots=True)
class StepStarted(Event):
    type: ClassVar[EventType] = "step_started"
    step_key: str
    attempt: int
    agent: str | None  # None: a sub-workflow or an approval
    items: int | None = field(default=None, metadata=_OMIT_NONE)  # a forEach fanning out
    # a sub-workflow step: the child execution it started (or, resumed, attached to)
    child_execution_id: str | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(slots=True)
class StepCompleted(Event):
    type: ClassVar[EventType] = "step_completed"
    step_key: str
    attempt: int
    duration_ms: int
    provider: str | None
    items: int | None = field(default=None, metadata=_OMIT_NONE)  # a forEach's items, done
    # Answered from the result cache: True, and the execution whose call produced it.
    cached: bool | None = field(default=None, metadata=_OMIT_NONE)
    cached_from: str | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(slots=True)
class StepFailed(Event):
    type: ClassVar[EventType] = "step_failed"
    step_key: str
    attempt: int
    error_kind: str
    error: str
    duration_ms: int
    optional: bool


@dataclass(slots=True)
class StepRetrying(Event):
    type: ClassVar[EventType] = "step_retrying"
    step_key: str
    attempt: int  # the attempt that comes next
    failed_attempt: int
    delay_ms: int
    error_kind: str
    error: str


@dataclass(slots=True)
class StepSkipped(Event):
    type: ClassVar[EventType] = "step_skipped"
    step_key: str
    reason: str
    failed_step: str | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(slots=True)
class StepCancelled(Event):
    type: ClassVar[EventType] = "step_cancelled"
    step_key: str
    attempt: int
    reason: str


# ---- approval gates (the step's own step_started / step_completed / step_failed come too) ----


@dataclass(slots=True)
class ApprovalRequested(Event):
    type: ClassVar[EventType] = "approval_requested"
    step_key: str
    message: str
    expires_at: str | None  # ISO-8601; None: no timeout
    on_timeout: str
    approve_command: str  # exactly what a person types to decide
    reject_command: str


@dataclass(slots=True)
class ApprovalDecided(Event):
    """A gate's decision, either way: the two events carry the same keys."""

    step_key: str
    by: str  # AX_USER or the login name, or "timeout"
    comment: str | None
    at: str  # ISO-8601: when the decision was given


@dataclass(slots=True)
class ApprovalGranted(ApprovalDecided):
    type: ClassVar[EventType] = "approval_granted"


@dataclass(slots=True)
class ApprovalRejected(ApprovalDecided):
    type: ClassVar[EventType] = "approval_rejected"


# ---- checkpoints ----


@dataclass(slots=True)
class CheckpointCreated(ExecutionEvent):
    type: ClassVar[EventType] = "checkpoint_created"
    created_by: str
    label: str | None
    state: str
    completed_steps: int
    pending_steps: int


@dataclass(slots=True)
class CheckpointRestored(ExecutionEvent):
    type: ClassVar[EventType] = "checkpoint_restored"
    checkpoint_id: str | None
    checkpoint_created_by: str | None
    source: str
    completed_steps: int


STEP_EVENTS: tuple[type[Event], ...] = (
    StepStarted,
    StepCompleted,
    StepFailed,
    StepRetrying,
    StepSkipped,
    StepCancelled,
)
