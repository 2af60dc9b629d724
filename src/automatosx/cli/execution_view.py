"""One execution as people and scripts see it: the JSON document of `status`, `run` and
`resume` (SPEC section 7), and its Rich rendering.

Each step is described by its LATEST attempt (state, duration, agent, provider, error) plus
how many attempts actually started; steps that never got an attempt row are absent. Steps
appear in the workflow file's order. Beyond the contract's keys, each step and the whole
execution carry usage totals over all attempts (`tokensIn`, `tokensOut`, `costUsd`, null when
no provider reported any) and each step its `errorKind`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from automatosx.cli import output
from automatosx.errors import NotFoundError
from automatosx.store.base import Store
from automatosx.store.records import ExecutionRecord, StepExecutionRecord

if TYPE_CHECKING:  # Rich is imported when a table is rendered, not for --format json
    from rich.console import Console


def execution_document(store: Store, execution: ExecutionRecord) -> dict[str, Any]:
    """The contract's JSON document for one execution, read from the store."""
    attempts_by_step: dict[str, list[StepExecutionRecord]] = {}
    for attempt in store.list_step_executions(execution.id):
        attempts_by_step.setdefault(attempt.step_key, []).append(attempt)
    steps: dict[str, Any] = {}
    results: dict[str, Any] = {}
    totals = _Usage()
    for key in _step_order(store, execution, attempts_by_step):
        attempts = sorted(attempts_by_step[key], key=lambda a: a.attempt)
        latest = attempts[-1]
        usage = _Usage()
        for attempt in attempts:
            usage.add(attempt)
            totals.add(attempt)
        steps[key] = {
            "state": latest.state,
            "attempts": sum(1 for a in attempts if a.started_at is not None),
            "durationMs": latest.duration_ms,
            "agent": latest.agent,
            "provider": latest.provider,
            "error": _error_text(latest),
            "errorKind": latest.error_kind,
            **usage.document(),
        }
        if latest.state == "completed":
            results[key] = latest.output
    return {
        "executionId": execution.id,
        "workflowId": execution.workflow_id,
        "workflowName": execution.workflow_name,
        "state": execution.state,
        "triggeredBy": execution.triggered_by,
        "priority": execution.priority,
        "startedAt": output.iso(execution.started_at),
        "completedAt": output.iso(execution.completed_at),
        "durationMs": execution.duration_ms,
        "resumeCount": execution.resume_count,
        "error": execution.error,
        "steps": steps,
        "stepResults": results,
        "context": execution.context,
        **totals.document(),
    }


def render_execution(
    document: dict[str, Any], *, console: Console | None = None, final_steps: Sequence[str] = ()
) -> None:
    """Prints an `execution_document` for people: a header, one row per step, then the
    results of `final_steps` (what a person ran the workflow for, such as the report)."""
    from rich.table import Table

    out = console or output.console
    steps: dict[str, Any] = document["steps"]
    completed = sum(1 for s in steps.values() if s["state"] == "completed")
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    header.add_row("Execution", document["executionId"])
    header.add_row("Workflow", document["workflowName"])
    header.add_row("State", output.styled_state(document["state"]))
    header.add_row("Triggered by", f"{document['triggeredBy']} (priority {document['priority']})")
    header.add_row("Started", _when(document["startedAt"]))
    header.add_row("Completed", _when(document["completedAt"]))
    header.add_row("Duration", output.human_duration(document["durationMs"]))
    header.add_row("Steps", f"{completed}/{len(steps)} completed")
    if document["resumeCount"]:
        header.add_row("Resumed", f"{document['resumeCount']} time(s)")
    usage = _usage_text(document)
    if usage:
        header.add_row("Usage", usage)
    if document["error"]:
        header.add_row("Error", f"[red]{_escape(document['error'])}[/red]")
    out.print(header)
    if not steps:
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("Step", "State", "Attempts", "Duration", "Agent", "Provider", "Error"):
        table.add_column(column, no_wrap=column != "Error", overflow="fold")
    for key, step in steps.items():
        table.add_row(
            key,
            output.styled_state(step["state"]),
            str(step["attempts"]),
            output.human_duration(step["durationMs"]),
            step["agent"] or "-",
            step["provider"] or "-",
            _escape(step["error"]) if step["error"] else "",
        )
    out.print()
    out.print(table)
    for key in final_steps:
        if key in document["stepResults"]:
            out.print()
            out.print(f"[bold]Result of {_escape(key)}[/bold]")
            out.print(_escape(_result_text(document["stepResults"][key])))


def final_steps(store: Store, execution: ExecutionRecord) -> list[str]:
    """Steps no other step depends on, in file order: the workflow's end products."""
    try:
        steps = store.execution_definition(execution.id).get("steps", [])
    except (NotFoundError, AttributeError):
        return []
    needed = {dep for step in steps for dep in step.get("dependencies", [])}
    return [step["key"] for step in steps if step["key"] not in needed]


def _result_text(result: Any, max_lines: int = 40) -> str:
    text = result if isinstance(result, str) else json.dumps(result, indent=2, ensure_ascii=False)
    lines = text.strip().splitlines()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


class _Usage:
    """Token and cost totals; stays None until some attempt reports a figure."""

    def __init__(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost_usd: float | None = None

    def add(self, attempt: StepExecutionRecord) -> None:
        if attempt.tokens_in is not None:
            self.tokens_in = (self.tokens_in or 0) + attempt.tokens_in
        if attempt.tokens_out is not None:
            self.tokens_out = (self.tokens_out or 0) + attempt.tokens_out
        if attempt.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + attempt.cost_usd

    def document(self) -> dict[str, Any]:
        cost = None if self.cost_usd is None else round(self.cost_usd, 8)
        return {"tokensIn": self.tokens_in, "tokensOut": self.tokens_out, "costUsd": cost}


def _step_order(
    store: Store, execution: ExecutionRecord, attempts: dict[str, list[StepExecutionRecord]]
) -> list[str]:
    try:
        definition = store.execution_definition(execution.id)
        declared = [step["key"] for step in definition.get("steps", [])]
    except (NotFoundError, AttributeError, KeyError, TypeError):
        declared = []
    ordered = [key for key in declared if key in attempts]
    rest = [key for key in attempts if key not in set(ordered)]
    rest.sort(key=lambda k: (min((a.started_at or float("inf")) for a in attempts[k]), k))
    return ordered + rest


def _error_text(attempt: StepExecutionRecord) -> str | None:
    if attempt.error_kind and attempt.error_message:
        return f"{attempt.error_kind}: {attempt.error_message}"
    return attempt.error_message or attempt.error_kind


def _when(iso_text: str | None) -> str:
    if iso_text is None:
        return "-"
    stamp = datetime.fromisoformat(iso_text).timestamp()
    return f"{iso_text} ({output.relative_time(stamp)})"


def _usage_text(document: dict[str, Any]) -> str:
    parts = []
    if document.get("tokensIn") is not None or document.get("tokensOut") is not None:
        parts.append(
            f"{document.get('tokensIn') or 0} in / {document.get('tokensOut') or 0} out tokens"
        )
    if document.get("costUsd") is not None:
        parts.append(f"${document['costUsd']:.4f}")
    return ", ".join(parts)


def _escape(text: str) -> str:
    return output.escape(text)
