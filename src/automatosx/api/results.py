"""What the API returns: typed views of the JSON documents the CLI prints.

Each object is built from the read model's document (`views.execution`,
`views.documents`): the same fields as `ax ... --format json`, in snake_case
(`executionId` -> `execution_id`, `stepResults` -> `step_results`), and `to_dict()` gives
that JSON document back exactly. Timestamps are ISO-8601 strings, as in the JSON.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from automatosx.store.records import TERMINAL_STATES, ExecutionState, StepState

_T = TypeVar("_T", bound="_Document")


def camel(name: str) -> str:
    """`execution_id` -> `executionId` (the JSON documents' spelling)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class _Document:
    """Base: fields read from a document by their camelCase keys; the document kept."""

    _document: dict[str, Any] = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_document(cls: type[_T], document: Mapping[str, Any]) -> _T:
        values = {
            f.name: document.get(camel(f.name), _default(f))
            for f in dataclasses.fields(cls)
            if f.name != "_document"
        }
        return cls(**values, _document=copy.deepcopy(dict(document)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document this object was read from, as the CLI prints it."""
        return copy.deepcopy(self._document)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return None


@dataclass(frozen=True)
class StepStatus(_Document):
    """One entry of `steps` in the status document: a step, a forEach step or one of its
    items (`review[2]`), with its latest attempt."""

    state: StepState
    attempts: int
    duration_ms: int | None
    agent: str | None
    provider: str | None
    error: str | None
    error_kind: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    items: int | None = None  # a forEach step's number of items, once it fanned out
    child_execution_id: str | None = None  # a sub-workflow step's child execution
    cached: bool = False  # answered from the result cache
    cached_from: str | None = None
    saved_usd: float | None = None


@dataclass(frozen=True)
class ExecutionResult(_Document):
    """One execution: the `ax workflow status ID --format json` document (also what `run`
    and `resume` print at the end)."""

    execution_id: str
    workflow_id: str
    workflow_name: str
    state: ExecutionState
    triggered_by: str
    priority: int
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    parent_execution_id: str | None
    resume_count: int
    error: str | None
    steps: dict[str, StepStatus]
    step_results: dict[str, Any]  # each completed step's output
    context: dict[str, Any]
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    saved_usd: float | None
    orphaned: bool  # still `executing`, but its runner is gone
    workdir: str | None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ExecutionResult:
        result = super().from_document(document)
        steps = {key: StepStatus.from_document(doc) for key, doc in document["steps"].items()}
        object.__setattr__(result, "steps", steps)
        return result

    @property
    def is_terminal(self) -> bool:
        """Whether it has ended: completed, failed or cancelled."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class RunSummary(_Document):
    """One entry of `ax workflow runs --format json`: an execution, briefly."""

    execution_id: str
    workflow_name: str
    state: ExecutionState
    triggered_by: str
    priority: int
    started_at: str | None
    completed_at: str | None
    duration_ms: int | None
    parent_execution_id: str | None
    orphaned: bool


@dataclass(frozen=True)
class Event(_Document):
    """One entry of `ax workflow events ID --format json`: the audit log, in order."""

    id: int
    execution_id: str
    type: str
    step_key: str | None
    data: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class Checkpoint(_Document):
    """One entry of `ax workflow checkpoints ID --format json`, newest first."""

    id: str
    execution_id: str
    state: str
    label: str | None
    created_by: str
    created_at: str
    size_bytes: int
    completed_steps: list[str]
    pending_steps: list[str]


@dataclass(frozen=True)
class WorkflowSummary(_Document):
    """One entry of `ax workflow list --format json`: a stored workflow and its record."""

    name: str
    version: str
    description: str | None
    total_executions: int
    successful_executions: int
    success_rate: float | None
    avg_duration_ms: int | None


@dataclass(frozen=True)
class PendingApproval(_Document):
    """One entry of `ax workflow pending --format json`: a gate waiting for a decision."""

    execution_id: str
    workflow_name: str
    step_key: str
    message: str | None
    requested_at: str | None
    expires_at: str | None
