"""`ax worker`: run submitted executions until SIGINT or SIGTERM (SPEC section 9).

Needs PostgreSQL (`AX_DB=postgresql://...`): on a SQLite store it exits 2 at once. Any
number of workers on any number of machines share the queue; each runs up to
`--concurrency` executions at a time. A stop signal drains: nothing new is claimed, running
executions have `--grace` seconds, then they are stopped and left for another worker.
"""

from __future__ import annotations

import typer

from automatosx.cli.apps import app


@app.command("worker")
def worker_command(
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, help="Executions this worker runs at a time."
    ),
    grace: float = typer.Option(
        30.0, "--grace", min=0, help="Seconds running executions get after a stop signal."
    ),
) -> None:
    """Run submitted executions (`ax workflow submit`) until stopped (PostgreSQL)."""
    from automatosx.store.open import resolve_location
    from automatosx.worker.serve import serve

    serve(resolve_location(), concurrency=concurrency, grace_s=grace)
