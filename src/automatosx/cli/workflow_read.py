"""`ax workflow list | show | runs | status | events | checkpoints | prune`: reading the store.

Every reader learns the truth from the store (never from a runner's memory), so these work
from any shell while a run is in progress. `--format json` prints exactly the SPEC section 7
shapes; tables colour states, show times relative to now and sizes in KB.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.completion import (
    complete_execution_id,
    complete_step_key,
    complete_workflow_name,
)
from automatosx.cli.output import (
    OutputFormat,
    console,
    err_console,
    escape,
    human_duration,
    human_size,
    iso,
    neutralise,
    print_json,
    relative_time,
    styled_state,
)
from automatosx.store.liveness import is_orphaned
from automatosx.views.documents import (
    checkpoint_document,
    event_document,
    run_document,
    workflow_document,
)
from automatosx.views.timestamps import parse_age

if TYPE_CHECKING:
    from rich.table import Table

    from automatosx.store.base import Store
    from automatosx.store.records import EventRecord

FORMAT_OPTION = typer.Option(OutputFormat.table, "--format", help="Output format.")


def opened_store() -> AbstractContextManager[Store]:
    """The store for a `with` block, imported only when a command runs (start-up). A reader
    never creates the database: a missing one reads as empty (SPEC section 7)."""
    from automatosx.store import opened_store as opened

    return opened(create=False)


ID_ARGUMENT = typer.Argument(
    ..., help="Execution ID (or a unique prefix of 8+ characters).", show_default=False,
    autocompletion=complete_execution_id,
)  # fmt: skip
FOLLOW_POLL_SECONDS = 0.25


# ---- commands ----


@workflow_app.command("list")
def list_command(
    search: str | None = typer.Option(
        None, "--search", metavar="TEXT",
        help="Only workflows whose name, description, tags or author have words starting "
        "with every word of TEXT, best match first.",
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> None:  # fmt: skip
    """Stored workflows with their executions and success rate."""
    with opened_store() as store:
        workflows = store.list_workflows() if search is None else store.search_workflows(search)
    if format is OutputFormat.json:
        print_json([workflow_document(w) for w in workflows])
        return
    if not workflows:
        if search is not None:
            err_console.print(f"No stored workflow matches {search!r}.", markup=False)
        else:
            err_console.print("No workflows yet: `ax workflow run FILE` stores the ones it runs.")
        return
    table = _table("Name", "Version", "Description", "Executions", "Success", "Avg duration")
    for workflow in workflows:
        rate = workflow.success_rate
        table.add_row(
            escape(workflow.name),
            escape(workflow.version),
            escape(workflow.description or ""),
            str(workflow.total_executions),
            "-" if rate is None else f"{rate:.0%}",
            human_duration(workflow.avg_duration_ms),
        )
    console.print(table)


@workflow_app.command("show")
def show_command(
    name: str = typer.Argument(
        ..., help="Workflow name.", show_default=False, autocompletion=complete_workflow_name
    ),
    version: str | None = typer.Option(
        None, "--version", metavar="V", help="This version (default: the newest)."
    ),
) -> None:
    """The stored definition as YAML, a workflow file again. Secret-looking values of an
    inline agent's env were stored as ***: set them in the shell to run it."""
    from automatosx.definition.serialize import dump_yaml

    with opened_store() as store:
        workflow = store.get_workflow(name, version)
    # The version always shown (the file form leaves the default 1.0.0 out), after the name.
    definition = {"name": workflow.name, "version": workflow.version, **workflow.definition}
    sys.stdout.write(neutralise(dump_yaml(definition)))
    sys.stdout.flush()


@workflow_app.command("runs")
def runs_command(
    workflow: str | None = typer.Option(None, "--workflow", help="Only runs of this workflow."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first."),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """Recent executions, newest first."""
    with opened_store() as store:
        if workflow is not None:
            store.get_workflow(workflow)  # an unknown name is an error, not an empty list
        executions = store.list_executions(workflow_name=workflow, limit=limit)
    if format is OutputFormat.json:
        print_json([run_document(e) for e in executions])
        return
    if not executions:
        err_console.print("No executions yet.")
        return
    columns = ["Execution", "Workflow", "State", "Triggered by", "Started", "Duration"]
    children = any(e.parent_execution_id for e in executions)
    if children:  # a sub-workflow's run names its parent's (ID prefix)
        columns.insert(1, "Parent")
    table = _table(*columns)
    for execution in executions:
        row = [
            execution.id,
            escape(execution.workflow_name),
            styled_state(execution.state)
            + (" [yellow](runner gone)[/yellow]" if is_orphaned(execution) else ""),
            escape(execution.triggered_by),
            relative_time(execution.started_at) if execution.started_at else "not started",
            human_duration(execution.duration_ms),
        ]
        if children:
            parent = execution.parent_execution_id
            row.insert(1, parent[:8] if parent else "-")
        table.add_row(*row)
    console.print(table)
    if any(is_orphaned(e) for e in executions):
        err_console.print(
            "An execution whose runner is gone can be continued with `ax workflow resume ID`, "
            "or every such execution with `ax workflow recover`."
        )


@workflow_app.command("status")
def status_command(id: str = ID_ARGUMENT, format: OutputFormat = FORMAT_OPTION) -> None:
    """One execution: its state, timings and every step's latest attempt."""
    from automatosx.cli.execution_view import render_execution
    from automatosx.views.execution import execution_document, final_steps

    with opened_store() as store:
        execution = store.get_execution(id)
        document = execution_document(store, execution)
        ends = final_steps(store, execution)
    if format is OutputFormat.json:
        print_json(document)
    else:
        render_execution(document, final_steps=ends)


class OutputShape(StrEnum):
    text = "text"
    json = "json"


@workflow_app.command("output")
def output_command(
    id: str = ID_ARGUMENT,
    step: str = typer.Argument(
        ...,
        help="Step key, or a forEach item such as review[3].",
        show_default=False,
        autocompletion=complete_step_key,
    ),
    format: OutputShape = typer.Option(
        OutputShape.text, "--format", help="text: as it is (JSON pretty); json: compact JSON."
    ),
) -> None:
    """One step's output: text as the agent gave it, JSON pretty-printed.

    Control characters are shown escaped in the text format; `--format json` prints the
    output exactly, as one JSON document (for `jq -r` and scripts)."""
    from automatosx.views.execution import step_output

    with opened_store() as store:
        value = step_output(store, store.get_execution(id), step)
    if format is OutputShape.json:
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    elif isinstance(value, str):
        sys.stdout.write(neutralise(value) + ("" if value.endswith("\n") else "\n"))
    else:
        sys.stdout.write(neutralise(json.dumps(value, indent=2, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


@workflow_app.command("events")
def events_command(
    id: str = ID_ARGUMENT,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new events until the execution ends."
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """The execution's audit log, in order.

    With --follow, new events print as they are stored until the execution reaches a
    terminal state; with --format json the whole log is then printed as one document.
    """
    with opened_store() as store:
        execution = store.get_execution(id)
        if not follow:
            events = store.list_events(execution.id)
            if format is OutputFormat.json:
                print_json([event_document(e) for e in events])
            else:
                _print_events_table(events)
            return
        collected = _follow_events(store, execution.id, live=format is OutputFormat.table)
    if format is OutputFormat.json:
        print_json([event_document(e) for e in collected])


@workflow_app.command("checkpoints")
def checkpoints_command(
    id: str = ID_ARGUMENT,
    limit: int = typer.Option(10, "--limit", min=1, help="How many, newest first."),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """The execution's checkpoints, newest first, with totals."""
    with opened_store() as store:
        execution = store.get_execution(id)
        every = store.list_checkpoints(execution.id)
    shown = every[:limit]
    if format is OutputFormat.json:
        print_json([checkpoint_document(c) for c in shown])
        return
    if not every:
        console.print(f"No checkpoints for execution {execution.id}.")
        return
    table = _table("Checkpoint", "State", "Created", "By", "Label", "Size", "Steps done")
    for checkpoint in shown:
        done = len(checkpoint.completed_steps)
        table.add_row(
            checkpoint.id[:8],
            styled_state(checkpoint.state),
            relative_time(checkpoint.created_at),
            checkpoint.created_by,
            escape(checkpoint.label or ""),
            human_size(checkpoint.size_bytes),
            f"{done}/{done + len(checkpoint.pending_steps)}",
        )
    console.print(table)
    total = sum(c.size_bytes for c in every)
    oldest = min(c.created_at for c in every)
    noun = "checkpoint" if len(every) == 1 else "checkpoints"
    console.print(
        f"{len(every)} {noun}, {human_size(total)} total, oldest {relative_time(oldest)}"
        + (f" (showing the newest {len(shown)})" if len(shown) < len(every) else "")
    )


@workflow_app.command("prune")
def prune_command(
    older_than: str = typer.Option(
        ..., "--older-than", help="Age such as 30s, 15m, 12h or 7d.", show_default=False
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """Delete old checkpoints and the old events of finished executions.

    The newest checkpoint of an unfinished (for example paused) execution is always kept.
    """
    age = parse_age(older_than)
    with opened_store() as store:
        result = store.prune(age)
    if format is OutputFormat.json:
        print_json({"checkpoints": result.checkpoints, "events": result.events})
    else:
        console.print(
            f"Pruned {result.checkpoints} checkpoint(s) and {result.events} event(s) "
            f"older than {older_than.strip()}."
        )


# ---- rendering ----


_WRAPPING_COLUMNS = frozenset({"Description", "Data", "Label"})


def _table(*columns: str) -> Table:
    """A plain table; IDs and times never wrap (they are copied and scanned), text folds."""
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column not in _WRAPPING_COLUMNS,
            min_width=36 if column == "Execution" else None,  # a full UUID, never cut
        )
    return table


def _data_text(data: dict[str, Any], width: int = 100) -> str:
    if not data:
        return ""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_events_table(events: list[EventRecord]) -> None:
    if not events:
        console.print("No events yet.")
        return
    table = _table("#", "Time", "Type", "Step", "Data")
    for event in events:
        table.add_row(
            str(event.id),
            iso(event.created_at) or "",
            event.type,
            escape(event.step_key or ""),
            escape(_data_text(event.data)),
        )
    console.print(table)


def _print_event_line(event: EventRecord) -> None:
    step = escape(event.step_key or "-")
    console.print(
        f"{event.id:>6}  {iso(event.created_at)}  {event.type:<20}  {step:<24}  "
        f"{escape(_data_text(event.data))}".rstrip(),
        soft_wrap=True,  # one event per line, even when piped to grep
    )


def _follow_events(store: Store, execution_id: str, *, live: bool) -> list[EventRecord]:
    """Polls for new events until the execution is terminal; prints them as they come when
    `live`. The state is read before the events, so the final events are never missed."""
    collected: list[EventRecord] = []
    last_id = 0
    while True:
        finished = store.get_execution(execution_id).is_terminal
        new = store.list_events(execution_id, after_id=last_id)
        for event in new:
            if live:
                _print_event_line(event)
            last_id = event.id
        collected.extend(new)
        if finished:
            return collected
        if not new:
            time.sleep(FOLLOW_POLL_SECONDS)
