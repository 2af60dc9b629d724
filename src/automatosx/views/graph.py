"""One execution's DAG with live states: `GET /api/v1/executions/{id}/graph` (SPEC section 10)
and the dashboard's graph, which draws every step before it runs.

The nodes are the steps of the definition the execution started with (not the workflow's
current version), in file order, each with its instance's state and its level (longest
chain of dependencies before it). Beyond the contract's keys, each node says its `kind`
(agent, workflow, approval), why it was skipped (`skipReason`), and a forEach step its
items' counts by state (`items`: `{"total": 12, "completed": 9, "running": 3}`), so a
fan-out of a thousand items draws as one node with counts. `criticalPath` is the chain of
dependent steps whose times (so far) add up the most, a step's time being its whole span
from its first attempt's start to its last one's end: a retried step's backoff and failed
attempts hold its dependents up as much as its last attempt does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from automatosx.definition.graph import graph_from_dependencies
from automatosx.store.base import Store
from automatosx.store.records import ExecutionRecord, StepInstanceRecord


def execution_graph_document(store: Store, execution: ExecutionRecord) -> dict[str, Any]:
    steps = store.execution_definition(execution.id).get("steps", [])
    pairs = [(step["key"], list(step.get("dependencies", []))) for step in steps]
    graph = graph_from_dependencies(pairs)  # it ran, so it is a DAG
    instances = store.list_instances(execution.id)
    by_key = {instance.key: instance for instance in instances}
    items: dict[str, Counter[str]] = {}
    for instance in instances:
        if instance.parent_key is not None:
            items.setdefault(instance.parent_key, Counter())[instance.state] += 1
    nodes = []
    for step in steps:
        key = step["key"]
        found = by_key.get(key)
        node: dict[str, Any] = {
            "key": key,
            "state": found.state if found is not None else "pending",
            "level": graph.level_of(key),
            "kind": _kind(step),
            "skipReason": found.skip_reason if found is not None else None,
        }
        if step.get("forEach") is not None:
            counts = items.get(key, Counter())
            node["items"] = {"total": sum(counts.values()), **dict(sorted(counts.items()))}
        nodes.append(node)
    first_start: dict[str, float] = {}
    for attempt in store.list_step_executions(execution.id, instances=()):  # earlier ones
        if attempt.started_at is not None:
            known = first_start.get(attempt.step_key, attempt.started_at)
            first_start[attempt.step_key] = min(known, attempt.started_at)
    durations = {key: _span(by_key.get(key), first_start.get(key)) for key, _ in pairs}
    path, _ = graph.critical_path(durations, default=0.0)
    return {
        "nodes": nodes,
        "edges": [[dep, key] for key, deps in pairs for dep in deps],
        "criticalPath": path if any(durations.values()) else [],
    }


def _kind(step: dict[str, Any]) -> str:
    if step.get("workflow") is not None:
        return "workflow"
    if step.get("approval") is not None:
        return "approval"
    return "agent"


def _span(instance: StepInstanceRecord | None, first_start: float | None) -> float:
    """Milliseconds from the step's first attempt's start to its latest attempt's end."""
    if instance is None or instance.duration_ms is None:
        return 0.0
    if first_start is None or instance.completed_at is None:
        return float(instance.duration_ms)
    return max(float(instance.duration_ms), (instance.completed_at - first_start) * 1000)
