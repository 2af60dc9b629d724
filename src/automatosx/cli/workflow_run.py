"""`ax workflow run | resume | pause | cancel | recover`: executing workflows and steering
them from any process.

`run` and `resume` drive the execution in the foreground (a live view on a terminal, then a
summary; or exactly one JSON document with `--format json`) and exit with the execution's
outcome: 0 completed, 1 failed, 3 cancelled, 4 paused. Ctrl-C or SIGTERM cancels cleanly.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.completion import complete_execution_id
from automatosx.cli.output import OutputFormat, console, err_console, print_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from automatosx.cli.live_progress import LiveProgress
    from automatosx.definition.models import WorkflowDefinition
    from automatosx.runtime.cache_policy import CacheMode
    from automatosx.runtime.engine import CommitObserver, ExecutionOutcome, ExecutionRunner
    from automatosx.runtime.preparation import PreparedWorkflow
    from automatosx.store.base import Store
    from automatosx.store.records import WriteOp

FORMAT_OPTION = typer.Option(OutputFormat.table, "--format", help="Output format.")
NO_CACHE_OPTION = typer.Option(
    False, "--no-cache", help="Neither read nor write the result cache for this run."
)
REFRESH_CACHE_OPTION = typer.Option(
    False,
    "--refresh-cache",
    help="Call the provider for every cached step and overwrite its cache entry.",
)
FILE_ARGUMENT = typer.Argument(..., help="Workflow file (YAML or JSON).", show_default=False)
CONTEXT_OPTION = typer.Option(None, "--context", help="Context as a JSON object, or @file.json.")
CONTEXT_FILES_OPTION = typer.Option(
    None,
    "--context-file",
    metavar="NAME=PATH",
    help="Context value NAME is the text of PATH: a UTF-8 file of at most 64 KiB "
    "inside the working directory. Repeatable.",
)
TRIGGERED_BY_OPTION = typer.Option("cli", "--triggered-by", help="Who started it.")
ID_ARGUMENT = typer.Argument(
    ..., help="Execution ID (or a unique prefix of 8+ characters).",
    autocompletion=complete_execution_id,
)  # fmt: skip


@workflow_app.command("run")
def run_command(
    file: Path = FILE_ARGUMENT,
    context: str | None = CONTEXT_OPTION,
    context_files: list[str] | None = CONTEXT_FILES_OPTION,
    triggered_by: str = TRIGGERED_BY_OPTION,
    priority: int = typer.Option(0, "--priority", help="Priority recorded with the run."),
    no_cache: bool = NO_CACHE_OPTION,
    refresh_cache: bool = REFRESH_CACHE_OPTION,
    format: OutputFormat = FORMAT_OPTION,
) -> int:
    """Validate a workflow, then execute it in the foreground."""
    from automatosx.runtime.control import start_execution
    from automatosx.store import opened_store

    cache = cache_mode(no_cache=no_cache, refresh_cache=refresh_cache)
    prepared, values = prepare_file(file, context, context_files)
    definition = prepared.definition
    with opened_store() as store:
        with _progress(definition, format) as view:
            runner = start_execution(
                store,
                prepared,
                context=values,
                triggered_by=triggered_by,
                priority=priority,
                on_commit=view.on_commit if view else gate_notices(definition),
                cache=cache,
            )
            announce(runner.execution_id, "started", view)
            outcome = drive(runner)
        report(store, outcome.execution_id, format)
    return outcome.exit_code


@workflow_app.command("resume")
def resume_command(
    id: str = ID_ARGUMENT,
    no_cache: bool = NO_CACHE_OPTION,
    refresh_cache: bool = REFRESH_CACHE_OPTION,
    format: OutputFormat = FORMAT_OPTION,
) -> int:
    """Continue a paused execution, or one whose runner died, in the foreground (one
    submitted to the workers goes back to them). (The cache flags apply to what runs from
    now on; a resume without them uses the cache.)"""
    from automatosx.api.running import requeue_if_submitted, resume_run
    from automatosx.runtime.control import stored_definition
    from automatosx.store import opened_store

    cache = cache_mode(no_cache=no_cache, refresh_cache=refresh_cache)

    with opened_store(create=False) as store:  # nothing to act on: create nothing
        submitted = requeue_if_submitted(store, id)
        if submitted is not None:  # the workers continue it
            if format is OutputFormat.json:
                print_json({"executionId": submitted.id, "state": submitted.state})
            else:
                console.print(f"Queued {submitted.id} for the workers again.")
            return 0
        execution = store.get_execution(id)
        definition = stored_definition(store, execution)
        with _progress(definition, format) as view:
            if view is not None:
                view.seed(store.list_instances(execution.id))
            observer = view.on_commit if view else gate_notices(definition)
            runner = resume_run(store, id, on_commit=observer, cache=cache)
            announce(runner.execution_id, "resumed", view)
            if observer is not None and view is None:
                tell_waiting_gates(store, runner.execution_id)
            outcome = drive(runner)
        report(store, outcome.execution_id, format)
    return outcome.exit_code


@workflow_app.command("pause")
def pause_command(id: str = ID_ARGUMENT) -> int:
    """Ask a running execution to pause: running steps finish, nothing new starts."""
    from automatosx.runtime.control import pause_execution
    from automatosx.store import opened_store

    with opened_store(create=False) as store:  # nothing to act on: create nothing
        execution = pause_execution(store, id)
    if execution.state == "paused":
        console.print(f"Paused {execution.id}.")
    else:
        console.print(f"Pause requested for {execution.id} (running steps finish first).")
    return 0


@workflow_app.command("cancel")
def cancel_command(id: str = ID_ARGUMENT) -> int:
    """Cancel an execution: running steps are killed, state becomes cancelled."""
    from automatosx.runtime.control import cancel_execution
    from automatosx.store import opened_store

    with opened_store(create=False) as store:  # nothing to act on: create nothing
        execution = cancel_execution(store, id)
    if execution.state == "cancelled":
        console.print(f"Cancelled {execution.id}.")
    elif execution.is_terminal:
        console.print(f"Execution {execution.id} ended {execution.state} before the cancel.")
    else:
        console.print(f"Cancel requested for {execution.id}; its runner has not stopped yet.")
    return 0


@workflow_app.command("recover")
def recover_command(format: OutputFormat = FORMAT_OPTION) -> int:
    """Resume every execution whose runner died (after a crash or a reboot), side by side:
    one waiting on an approval holds up none of the others.

    Exits 0 when every recovered execution completed (or none needed recovery), else 1.
    """
    from automatosx.api.running import drive_all
    from automatosx.errors import AxError
    from automatosx.runtime.control import orphaned_executions, resume_execution
    from automatosx.store import opened_store
    from automatosx.views.execution import execution_document

    with opened_store(create=False) as store:  # nothing to act on: create nothing
        documents: list[dict[str, Any]] = []
        worst = 0
        orphans = orphaned_executions(store)
        if format is OutputFormat.table:
            console.print(f"Found {len(orphans)} orphaned execution(s).")
        runners: list[ExecutionRunner] = []
        names: dict[str, str] = {}
        for execution in orphans:
            try:
                runners.append(resume_execution(store, execution.id))
            except AxError as exc:  # taken by another process, or its agents are unusable here
                err_console.print(f"skipped {execution.id}: {exc}", markup=False)
                worst = 1
                continue
            names[execution.id] = execution.workflow_name
            tell_waiting_gates(store, execution.id)

        def ended(runner: ExecutionRunner, outcome: ExecutionOutcome | BaseException) -> None:
            nonlocal worst
            execution_id = runner.execution_id
            if isinstance(outcome, BaseException):
                err_console.print(f"stopped {execution_id}: {outcome}", markup=False)
                worst = 1
                return
            documents.append(execution_document(store, store.get_execution(execution_id)))
            worst = max(worst, 0 if outcome.state == "completed" else 1)
            if format is OutputFormat.table:
                console.print(f"{execution_id} {names[execution_id]}: {outcome.state}")

        if runners:
            drive_all(runners, ended)
    if format is OutputFormat.json:
        order = list(names)  # the orphans' order (oldest first), however they ended
        print_json(sorted(documents, key=lambda d: order.index(d["executionId"])))
    return worst


def prepare_file(
    file: Path, context: str | None, context_files: list[str] | None
) -> tuple[PreparedWorkflow, dict[str, Any]]:
    """`run`'s and `submit`'s start: the file loaded and checked with its context (every
    problem an `error:`), and a warning on stderr for each secret written in it."""
    from automatosx.api.running import prepare_run
    from automatosx.api.workflow import load_workflow
    from automatosx.cli.workflow_define import secret_warnings
    from automatosx.runtime.context import parse_context, read_context_files

    workflow = load_workflow(file)
    values = read_context_files(context_files or [], parse_context(context))
    prepared = prepare_run(workflow, values)
    for warning in secret_warnings(workflow.definition):
        err_console.print(f"warning: {file}: {warning['path']}: {warning['message']}", markup=False)
    return prepared, values


def cache_mode(*, no_cache: bool, refresh_cache: bool) -> CacheMode:
    """How a run uses the result cache, from its flags (which exclude each other)."""
    from automatosx.errors import AxError

    if no_cache and refresh_cache:
        raise AxError(
            "--no-cache and --refresh-cache exclude each other: --no-cache neither reads nor "
            "writes the cache, --refresh-cache calls the provider and overwrites its entry"
        )
    return "off" if no_cache else "refresh" if refresh_cache else "use"


def announce(execution_id: str, verb: str, view: LiveProgress | None) -> None:
    """The ID and the commands to steer the execution, on stderr the moment it exists, so a
    person can watch, pause or cancel it from another shell long before it ends (and a script
    reading stderr can learn the ID while the run is live). Above the live view when there is
    one; plain otherwise, so a JSON run still imports no Rich before its first step."""
    text = "\n".join(
        [
            f"Execution {execution_id} {verb}.",
            f"  status: ax workflow status {execution_id}",
            f"  follow: ax workflow events {execution_id} --follow",
            f"  pause:  ax workflow pause {execution_id}",
            f"  cancel: ax workflow cancel {execution_id}",
        ]
    )
    if view is not None:
        view.console.print(text, markup=False, highlight=False, soft_wrap=True)
        view.console.file.flush()
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def gate_notices(definition: WorkflowDefinition) -> CommitObserver | None:
    """Without a live view (a pipe, a CI log, `--format json`), each approval gate that
    opens is told on stderr with the commands that decide it, so whoever watches the log
    knows the run is waiting for a person and how to answer. No gate in the workflow: no
    observer (commits pay nothing)."""
    if not any(step.kind == "approval" for step in definition.steps):
        return None
    from automatosx.store.events import ApprovalRequested
    from automatosx.store.records import AppendEvent

    def observe(ops: Sequence[WriteOp]) -> None:
        for op in ops:
            if isinstance(op, AppendEvent) and isinstance(op.event, ApprovalRequested):
                event = op.event
                tell_gate(
                    event.step_key,
                    event.message,
                    event.expires_at,
                    event.on_timeout,
                    event.approve_command,
                    event.reject_command,
                )

    return observe


def tell_waiting_gates(store: Store, execution_id: str) -> None:
    """A resumed execution's gates that were already waiting (no event will open them
    again): told once, as `gate_notices` tells new ones."""
    from automatosx.store.approvals import decision_command
    from automatosx.store.timestamps import iso

    now = time.time()
    for pending in store.pending_approvals():
        gate = pending.approval
        expired = gate.expires_at is not None and gate.expires_at <= now  # decides at once
        if gate.execution_id == execution_id and not expired:
            key = gate.step_key
            tell_gate(
                key,
                gate.message or "",
                iso(gate.expires_at),
                gate.on_timeout,
                decision_command("approve", execution_id, key),
                decision_command("reject", execution_id, key),
            )


def tell_gate(
    key: str, message: str, expires_at: str | None, on_timeout: str, approve: str, reject: str
) -> None:
    from automatosx.cli.output import neutralise

    until = f" (until {expires_at}, then {on_timeout})" if expires_at else ""
    sys.stderr.write(
        f"Waiting for approval: step {key}: {neutralise(message)}{until}\n"
        f"  approve: {approve}\n"
        f"  reject:  {reject}\n"
    )
    sys.stderr.flush()


def drive(runner: ExecutionRunner) -> ExecutionOutcome:
    """The API's `drive`: a fresh event loop, SIGINT/SIGTERM cancel cleanly."""
    from automatosx.api.running import drive as run_to_its_end

    return run_to_its_end(runner)


def _progress(
    definition: WorkflowDefinition, format: OutputFormat
) -> AbstractContextManager[LiveProgress | None]:
    """A live view on an interactive terminal with the table format; nothing otherwise."""
    if format is OutputFormat.table and err_console.is_terminal:
        from automatosx.cli.live_progress import LiveProgress

        return LiveProgress(definition, err_console)
    return nullcontext()


def report(store: Store, execution_id: str, format: OutputFormat) -> None:
    from automatosx.cli.execution_view import render_execution
    from automatosx.views.execution import execution_document, final_steps

    execution = store.get_execution(execution_id)
    document = execution_document(store, execution)
    if format is OutputFormat.json:
        print_json(document)
    else:
        render_execution(document, final_steps=final_steps(store, execution))
