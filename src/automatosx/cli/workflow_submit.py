"""`ax workflow submit | wait`: executions for `ax worker` processes (SPEC section 9).

`submit` checks the workflow exactly as `run` does, stores the execution `queued` with its
first turn, prints `{"executionId", "state": "queued"}` (or one line) and exits 0 at once;
a worker on any machine runs it. `wait` blocks until an execution ends (or pauses) and
exits like `run`: 0 completed, 1 failed, 3 cancelled, 4 paused. Both need PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.output import OutputFormat, console, print_json
from automatosx.cli.workflow_run import (
    CONTEXT_FILES_OPTION,
    CONTEXT_OPTION,
    FILE_ARGUMENT,
    FORMAT_OPTION,
    ID_ARGUMENT,
    TRIGGERED_BY_OPTION,
    prepare_file,
    report,
)

WAIT_POLL_S = 0.1


@workflow_app.command("submit")
def submit_command(
    file: Path = FILE_ARGUMENT,
    context: str | None = CONTEXT_OPTION,
    context_files: list[str] | None = CONTEXT_FILES_OPTION,
    triggered_by: str = TRIGGERED_BY_OPTION,
    priority: int = typer.Option(0, "--priority", help="Workers take higher priorities first."),
    format: OutputFormat = FORMAT_OPTION,
) -> int:
    """Store an execution for the workers (`ax worker`) and return at once."""
    from automatosx.runtime.control import submit_execution
    from automatosx.store import opened_store
    from automatosx.worker.queue import ensure_job_queue

    prepared, values = prepare_file(file, context, context_files)
    with opened_store() as store:
        ensure_job_queue(store)
        execution = submit_execution(
            store, prepared, context=values, triggered_by=triggered_by, priority=priority
        )
    if format is OutputFormat.json:
        print_json({"executionId": execution.id, "state": execution.state})
    else:
        console.print(f"Queued {execution.id} for the workers.")
        console.print(f"  wait:   ax workflow wait {execution.id}", markup=False)
    return 0


@workflow_app.command("wait")
def wait_command(
    id: str = ID_ARGUMENT,
    timeout: float | None = typer.Option(
        None, "--timeout", min=0, help="Give up after this many seconds (exit 2)."
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> int:
    """Block until an execution ends (or pauses), then report it and exit like `run`."""
    from automatosx.errors import AxError
    from automatosx.runtime.engine import EXIT_CODES
    from automatosx.store import opened_store

    deadline = None if timeout is None else time.monotonic() + timeout
    with opened_store(create=False) as store:  # nothing to act on: create nothing
        execution = store.get_execution(id)
        while execution.state not in EXIT_CODES:
            if deadline is not None and time.monotonic() >= deadline:
                raise AxError(
                    f"execution {execution.id} is still {execution.state} after {timeout:g} s"
                )
            time.sleep(WAIT_POLL_S)
            execution = store.get_execution(execution.id)
        report(store, execution.id, format)
    return EXIT_CODES[execution.state]
