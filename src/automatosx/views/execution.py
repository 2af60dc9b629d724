"""One execution as people and scripts see it: the JSON document of `status`, `run` and
`resume` (SPEC section 7), read from its step instances.

Every step instance of the execution is listed, in the workflow file's order, whether it
ran or not (pending, skipped, cancelled included), a forEach step's items after it
(`review[0]`, `review[1]`, ...); `attempts` counts the attempts that started.
`stepResults` holds the steps' outputs (a forEach step's is the list of its items'
outputs). Beyond the contract's keys: each step its `errorKind`, each step and the whole
execution usage totals over all attempts (`tokensIn`, `tokensOut`, `costUsd`, null when no
provider reported any), a forEach step its number of `items`, a sub-workflow step its
`childExecutionId`, a step answered from the result cache `"cached": true` with
`cachedFrom` (the execution whose call it reused) and `savedUsd` (what that call cost; the
execution's `savedUsd` sums them, null when no step was answered from the cache), and the
execution its `parentExecutionId` (null at the top), `orphaned`
(still `executing`, runner gone) and `workdir` (where its steps run).
"""

from __future__ import annotations

from typing import Any

from automatosx.errors import NotFoundError, StateConflictError
from automatosx.store.base import Store, instance_of
from automatosx.store.liveness import is_orphaned
from automatosx.store.records import ExecutionRecord, StepExecutionRecord, StepInstanceRecord
from automatosx.views.documents import run_fields


def execution_document(store: Store, execution: ExecutionRecord) -> dict[str, Any]:
    """The contract's JSON document for one execution, read from the store."""
    instances = store.list_instances(execution.id)
    usage: dict[str, _Usage] = {}
    totals = _Usage()
    earlier = set()
    for attempt in store.list_step_executions(execution.id, instances=()):  # earlier attempts
        usage.setdefault(attempt.step_key, _Usage()).add(attempt)
        totals.add(attempt)
        earlier.add((attempt.step_key, attempt.attempt))
    steps: dict[str, Any] = {}
    results: dict[str, Any] = {}
    saved: float | None = None  # by steps the result cache answered (None: there were none)
    for instance in instances:
        if instance.cached:
            saved = (saved or 0.0) + (instance.saved_usd or 0.0)
        step_usage = usage.get(instance.key) or _Usage()
        if instance.attempt and (instance.key, instance.attempt) not in earlier:
            step_usage.add(instance)  # the latest attempt's usage is the instance's own
            totals.add(instance)
        steps[instance.key] = step_document(instance, step_usage)
        if instance.state == "completed" and instance.parent_key is None:
            results[instance.key] = instance.output  # a forEach's is its items' outputs
    return {
        "executionId": execution.id,
        "workflowId": execution.workflow_id,
        **run_fields(execution),
        "resumeCount": execution.resume_count,
        "error": execution.error,
        "steps": steps,
        "stepResults": results,
        "context": execution.context,
        **totals.document(),
        "savedUsd": None if saved is None else round(saved, 8),
        "orphaned": is_orphaned(execution),
        "workdir": execution.workdir,
    }


def step_document(instance: StepInstanceRecord, usage: _Usage) -> dict[str, Any]:
    """One `steps` entry: a step, a forEach step (with `items`, its number of items, once
    it fanned out) or one of its items (`review[3]`)."""
    document = {
        "state": instance.state,
        "attempts": instance.attempt,
        "durationMs": instance.duration_ms,
        "agent": instance.agent,
        "provider": instance.provider,
        "error": error_text(instance.error_kind, instance.error_message),
        "errorKind": instance.error_kind,
        **usage.document(),
    }
    if instance.items is not None:
        document["items"] = len(instance.items)
    if instance.child_execution_id is not None:
        document["childExecutionId"] = instance.child_execution_id
    if instance.cached:
        document["cached"] = True
        document["cachedFrom"] = instance.cached_from  # the execution whose call it reused
        document["savedUsd"] = instance.saved_usd  # what that call cost
    return document


def step_output(store: Store, execution: ExecutionRecord, key: str) -> Any:
    """The output of one completed step instance (`ax workflow output`): a step's, an
    item's (`review[3]`), or a forEach step's list of its items' outputs. An unknown key is
    NotFoundError (with the closest key); a step that has not completed, a conflict that
    says what it is instead."""
    instance = instance_of(store, execution, key)
    if instance.state != "completed":
        why = instance.skip_reason or error_text(instance.error_kind, instance.error_message)
        raise StateConflictError(
            f"step '{key}' is {instance.state}{f' ({why})' if why else ''}: it has no output"
        )
    return instance.output


def final_steps(store: Store, execution: ExecutionRecord) -> list[str]:
    """Steps no other step depends on, in file order: the workflow's end products."""
    try:
        steps = store.execution_definition(execution.id).get("steps", [])
    except (NotFoundError, AttributeError):
        return []
    needed = {dep for step in steps for dep in step.get("dependencies", [])}
    return [step["key"] for step in steps if step["key"] not in needed]


def error_text(kind: str | None, message: str | None) -> str | None:
    if kind and message:
        return f"{kind}: {message}"
    return message or kind


class _Usage:
    """Token and cost totals; stays None until some attempt reports a figure."""

    def __init__(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost_usd: float | None = None

    def add(self, attempt: StepExecutionRecord | StepInstanceRecord) -> None:
        if attempt.tokens_in is not None:
            self.tokens_in = (self.tokens_in or 0) + attempt.tokens_in
        if attempt.tokens_out is not None:
            self.tokens_out = (self.tokens_out or 0) + attempt.tokens_out
        if attempt.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + attempt.cost_usd

    def document(self) -> dict[str, Any]:
        cost = None if self.cost_usd is None else round(self.cost_usd, 8)
        return {"tokensIn": self.tokens_in, "tokensOut": self.tokens_out, "costUsd": cost}
