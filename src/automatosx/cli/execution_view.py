"""One execution for people: the Rich rendering of the `status` document (the document
itself is the read model's, `views.execution`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from automatosx.cli import output
from automatosx.store.approvals import decision_command

if TYPE_CHECKING:  # Rich is imported when a table is rendered, not for --format json
    from rich.console import Console


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
    if document.get("parentExecutionId"):  # a sub-workflow's child
        header.add_row("Parent", document["parentExecutionId"])
    header.add_row("State", _state_text(document))
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
    if document.get("orphaned") and document.get("parentExecutionId"):
        out.print()
        out.print(
            "[yellow]Its runner is gone (the process that ran it stopped).[/yellow] It is a "
            "sub-workflow: continue its parent with `ax workflow resume "
            f"{document['parentExecutionId']}`, or `ax workflow recover`."
        )
    elif document.get("orphaned"):
        out.print()
        out.print(
            "[yellow]Its runner is gone (the process that ran it stopped).[/yellow] Continue it "
            f"with `ax workflow resume {document['executionId']}`, or resume every such "
            "execution with `ax workflow recover`."
        )
    if not steps:
        return
    out.print()
    out.file.flush()
    output.write_table(
        out,
        ("Step", "State", "Attempts", "Duration", "Agent", "Provider", "Error"),
        (
            (
                (key, None),
                (step["state"], output.STATE_STYLES.get(step["state"])),
                (str(step["attempts"]), None),
                (output.human_duration(step["durationMs"]), None),
                (step["agent"] or "-", None),
                (step["provider"] or "-", None),
                (step["error"] or "", None),
            )
            for key, step in steps.items()
        ),
    )
    waiting = [key for key, step in steps.items() if step["state"] == "waiting"]
    if waiting:
        out.print()
        for key in waiting:
            command = decision_command("approve", document["executionId"], key)
            out.print(f"[yellow]waiting: {_escape(command)}[/yellow]")
        out.print("(or `ax workflow reject ID STEP`; both take --comment TEXT)", markup=False)
    for key in final_steps:
        if key in document["stepResults"]:
            out.print()
            out.print(f"[bold]Result of {_escape(key)}[/bold]")
            out.print(_escape(_result_text(document["stepResults"][key])))


def _result_text(result: Any, max_lines: int = 40) -> str:
    text = result if isinstance(result, str) else json.dumps(result, indent=2, ensure_ascii=False)
    lines = text.strip().splitlines()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def _state_text(document: dict[str, Any]) -> str:
    state = output.styled_state(document["state"])
    return f"{state} [yellow](runner gone)[/yellow]" if document.get("orphaned") else state


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
    cached = sum(1 for step in document["steps"].values() if step.get("cached"))
    if cached:
        saved = document.get("savedUsd") or 0.0
        parts.append(f"saved ${saved:.4f} by {cached} cached step{'s' if cached != 1 else ''}")
    return ", ".join(parts)


def _escape(text: str) -> str:
    return output.escape(text)
