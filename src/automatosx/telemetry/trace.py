"""An ended execution as a trace, in plain data: its spans, their ids, parents, times and
attributes. Pure over what the store holds, so `otel` only has to send it.

The shape:

- one span for the execution, `invoke_workflow <name>` (GenAI `invoke_workflow`), from its
  start to its end;
- one span per attempt of each step instance, named by the instance key (`review`,
  `review[3]`), a child of the execution's span, from the attempt's own start to its end
  as stored (a retry is a span of its own); an agent step's attempt is a GenAI
  `invoke_agent` with its provider, model, tokens and cost;
- a forEach step is a span of its own (its fan-out, from its start to its last item's
  end), the parent of its items' attempts;
- a sub-workflow step's child execution is the same shape again, its execution's span a
  child of the attempt span that started it, in the same trace.

Ids are derived, not drawn: the trace id is the top execution's id (a UUID is 128 bits,
as a trace id is: find the trace from `ax workflow runs`), each span id a hash of what the
span is (execution, instance key, attempt). Exporting an execution again therefore sends
the very same spans, and a child that ends after its parent (exported on its own) still
lands in its parent's trace under the step that started it.

Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`, `gen_ai.agent.name`, `gen_ai.workflow.name`; `gen_ai.system`
too, the provider's name before semconv 1.37, which many backends still read) and ours
(`ax.*`). A failed or cancelled attempt or execution has status ERROR with its message.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from automatosx.definition.validation import validate_document

if TYPE_CHECKING:
    from automatosx.definition.models import StepSpec
    from automatosx.store.base import Store
    from automatosx.store.records import (
        ExecutionRecord,
        StepExecutionRecord,
        StepInstanceRecord,
    )

AttributeValue = str | int | float | bool
# Our providers as the GenAI conventions name who serves the model (a value of their list
# when one applies; otherwise ours, as they allow).
GEN_AI_PROVIDERS = {
    "openai": "openai",
    "codex": "openai",
    "anthropic": "anthropic",
    "claude-code": "anthropic",
    "gemini-cli": "gcp.gemini",
}
ERROR_STATES = frozenset({"failed", "cancelled"})


@dataclass(frozen=True)
class PlannedSpan:
    name: str
    span_id: int
    parent_id: int | None  # None: the root of the trace
    start_ns: int  # Unix epoch nanoseconds
    end_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None  # status ERROR with this message; None: status unset


@dataclass(frozen=True)
class Trace:
    trace_id: int
    spans: list[PlannedSpan]  # every parent before its children


def execution_trace(store: Store, execution_id: str) -> Trace:
    """The trace of an execution and of its ended children, read from the store."""
    execution = store.get_execution(execution_id)
    top, parent_span = execution, None
    if execution.parent_execution_id is not None:  # a child ending after its parent
        parent = store.get_execution(execution.parent_execution_id)
        parent_span = _starting_span(store, parent, execution.id)
        top = _top(store, parent)
    spans: list[PlannedSpan] = []
    _add_execution(store, execution, parent_span, spans)
    return Trace(trace_id=trace_id_of(top.id), spans=spans)


def trace_id_of(execution_id: str) -> int:
    """The execution's id as a trace id: its 128 bits when it is a UUID, else a hash."""
    try:
        value = uuid.UUID(execution_id).int
    except ValueError:
        value = int.from_bytes(hashlib.sha256(execution_id.encode()).digest()[:16], "big")
    return value or 1  # an all-zero trace id is invalid


def span_id_of(*parts: str | int) -> int:
    """A span id derived from what the span is (64 bits, never zero)."""
    text = "/".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") or 1


def unix_nanos(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def _add_execution(
    store: Store, execution: ExecutionRecord, parent_span: int | None, spans: list[PlannedSpan]
) -> None:
    steps = {s.key: s for s in validate_document(store.execution_definition(execution.id)).steps}
    records = store.list_instances(execution.id)
    instances = {i.key: i for i in records}
    attempts = store.list_step_executions(execution.id, instances=records)
    children = _children(store, execution.id, records)
    ends = [a.completed_at for a in attempts if a.completed_at is not None]
    end = execution.completed_at or max([execution.started_at or execution.created_at, *ends])
    root = span_id_of(execution.id)
    common: dict[str, AttributeValue] = {
        "ax.execution.id": execution.id,
        "ax.workflow.name": execution.workflow_name,
    }
    spans.append(_execution_span(execution, root, parent_span, end, common))
    for instance in records:  # a forEach step's fan-out: the parent of its items' attempts
        fans_out = instance.parent_key is None and steps[instance.step_key].for_each is not None
        if fans_out and instance.started_at is not None:
            spans.append(_fan_out_span(instance, root, end, common))
    for attempt in attempts:
        instance = instances[attempt.step_key]
        parent = root
        if instance.parent_key is not None:
            parent = span_id_of(execution.id, instance.parent_key)
        child_id = children.get((attempt.step_key, attempt.attempt))
        step = steps[instance.step_key]
        spans.append(_attempt_span(attempt, instance, step, parent, end, common, child_id))
        if child_id is not None:
            child = store.get_execution(child_id)
            if child.is_terminal:  # one still running is exported when it ends
                _add_execution(store, child, spans[-1].span_id, spans)


def _execution_span(
    execution: ExecutionRecord,
    span_id: int,
    parent: int | None,
    end: float,
    common: dict[str, AttributeValue],
) -> PlannedSpan:
    attributes: dict[str, AttributeValue] = {
        **common,
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": execution.workflow_name,
        "ax.execution.state": execution.state,
        "ax.triggered_by": execution.triggered_by,
    }
    if execution.parent_execution_id is not None:
        attributes["ax.parent_execution.id"] = execution.parent_execution_id
    return PlannedSpan(
        f"invoke_workflow {execution.workflow_name}",
        span_id,
        parent,
        unix_nanos(execution.started_at or execution.created_at),
        unix_nanos(end),
        attributes,
        _error_of(execution.state, execution.error),
    )


def _fan_out_span(
    instance: StepInstanceRecord, parent: int, end: float, common: dict[str, AttributeValue]
) -> PlannedSpan:
    assert instance.started_at is not None
    attributes: dict[str, AttributeValue] = {
        **common,
        "ax.step.key": instance.key,
        "ax.step.state": instance.state,
        "ax.step.items": len(instance.items or []),
    }
    return PlannedSpan(
        instance.key,
        span_id_of(instance.execution_id, instance.key),
        parent,
        unix_nanos(instance.started_at),
        unix_nanos(instance.completed_at or end),
        attributes,
        _error_of(instance.state, instance.error_message),
    )


def _attempt_span(
    attempt: StepExecutionRecord,
    instance: StepInstanceRecord,
    step: StepSpec,
    parent: int,
    end: float,
    common: dict[str, AttributeValue],
    child_id: str | None,
) -> PlannedSpan:
    attributes: dict[str, AttributeValue] = {
        **common,
        "ax.step.key": attempt.step_key,
        "ax.step.attempt": attempt.attempt,
        "ax.step.state": attempt.state,
    }
    if step.workflow is not None:
        attributes["gen_ai.operation.name"] = "invoke_workflow"
        if child_id is not None:
            attributes["ax.child_execution.id"] = child_id
    elif step.approval is None:  # an agent's step
        attributes["gen_ai.operation.name"] = "invoke_agent"
        if attempt.agent is not None:
            attributes["gen_ai.agent.name"] = attempt.agent
        if attempt.provider is not None:
            provider = GEN_AI_PROVIDERS.get(attempt.provider, attempt.provider)
            attributes["gen_ai.provider.name"] = provider
            attributes["gen_ai.system"] = provider
            attributes["ax.provider"] = attempt.provider
    optional: dict[str, AttributeValue | None] = {
        "gen_ai.request.model": attempt.model,
        "gen_ai.usage.input_tokens": attempt.tokens_in,
        "gen_ai.usage.output_tokens": attempt.tokens_out,
        "ax.cost_usd": attempt.cost_usd,
        "ax.error.kind": attempt.error_kind,
        "error.type": attempt.error_kind,
    }
    attributes.update({k: v for k, v in optional.items() if v is not None})
    if instance.cached and attempt.attempt == instance.attempt:
        attributes["ax.step.cached"] = True
    start = attempt.started_at or attempt.completed_at or end
    return PlannedSpan(
        attempt.step_key,
        span_id_of(attempt.execution_id, attempt.step_key, attempt.attempt),
        parent,
        unix_nanos(start),
        unix_nanos(attempt.completed_at or end),
        attributes,
        _error_of(attempt.state, attempt.error_message),
    )


def _error_of(state: str, message: str | None) -> str | None:
    return (message or state) if state in ERROR_STATES else None


def _children(
    store: Store, execution_id: str, instances: list[StepInstanceRecord]
) -> dict[tuple[str, int], str]:
    """The child execution each sub-workflow attempt started, by (instance key, attempt):
    from the `step_started` events, which name it for every attempt (the instance keeps
    only the latest's)."""
    found: dict[tuple[str, int], str] = {}
    for event in store.list_events(execution_id):
        child = event.data.get("childExecutionId") if event.type == "step_started" else None
        if child is not None and event.step_key is not None:
            found[(event.step_key, int(event.data.get("attempt", 1)))] = str(child)
    for instance in instances:  # its events pruned: the latest attempt's, from the instance
        if instance.child_execution_id is not None:
            found.setdefault((instance.key, instance.attempt), instance.child_execution_id)
    return found


def _starting_span(store: Store, parent: ExecutionRecord, child_id: str) -> int | None:
    instances = store.list_instances(parent.id)
    for (key, attempt), started in _children(store, parent.id, instances).items():
        if started == child_id:
            return span_id_of(parent.id, key, attempt)
    return None


def _top(store: Store, execution: ExecutionRecord) -> ExecutionRecord:
    seen = {execution.id}
    while execution.parent_execution_id is not None and execution.parent_execution_id not in seen:
        execution = store.get_execution(execution.parent_execution_id)
        seen.add(execution.id)
    return execution
