"""`ax worker`: run submitted executions until SIGINT or SIGTERM (SPEC section 9).

Needs PostgreSQL (`AX_DB=postgresql://...`): on a SQLite store it exits 2 at once. Any
number of workers on any number of machines share the queue. Each drives executions and
runs step attempts, up to `--concurrency` of each at a time, taking only the attempts of
the providers `--queue` names (default: all). A stop signal drains: nothing new is
claimed, running work has `--grace` seconds, then it is stopped and left for another
worker.
"""

from __future__ import annotations

import typer

from automatosx.cli.apps import app


@app.command("worker")
def worker_command(
    concurrency: int = typer.Option(
        4, "--concurrency", min=1,
        help="Step attempts this worker runs at a time (and executions it drives).",
    ),
    queue: list[str] = typer.Option(
        [], "--queue", metavar="PROVIDER",
        help="Take only the steps of this provider (repeatable; default: every provider's). "
        "A machine without a provider should not take its steps.",
    ),
    grace: float = typer.Option(
        30.0, "--grace", min=0, help="Seconds running executions get after a stop signal."
    ),
) -> None:  # fmt: skip
    """Run submitted executions (`ax workflow submit`) until stopped (PostgreSQL)."""
    from automatosx.store.open import resolve_location
    from automatosx.worker.serve import serve

    serve(resolve_location(), concurrency=concurrency, queues=queue, grace_s=grace)
