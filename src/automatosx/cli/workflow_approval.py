"""`ax workflow approve | reject | pending`: people deciding approval gates.

A decision is recorded in the store by a compare-and-set (the first one wins; a second
exits 2 naming who decided and when) and applied by the execution's runner within a
control tick. It works whatever the execution is doing: a paused execution, or one whose
runner is gone, continues from it on `ax workflow resume` (or `recover`).
"""

from __future__ import annotations

import time

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.completion import complete_execution_id, complete_step_key
from automatosx.cli.output import (
    OutputFormat,
    console,
    err_console,
    print_json,
    relative_time,
    write_table,
)
from automatosx.store.records import ApprovalDecision

ID_ARGUMENT = typer.Argument(
    ..., help="Execution ID (or a unique prefix of 8+ characters).", show_default=False,
    autocompletion=complete_execution_id,
)  # fmt: skip
STEP_ARGUMENT = typer.Argument(
    ..., help="The approval step's key, or a forEach item such as 'gate[2]'.",
    show_default=False, autocompletion=complete_step_key,
)  # fmt: skip
COMMENT_OPTION = typer.Option(
    None, "--comment", metavar="TEXT", help="Why: stored with the decision and in its output."
)


@workflow_app.command("approve")
def approve_command(
    id: str = ID_ARGUMENT, step: str = STEP_ARGUMENT, comment: str | None = COMMENT_OPTION
) -> int:
    """Approve a waiting approval step: it completes and its dependents run."""
    return _decide(id, step, "approved", comment)


@workflow_app.command("reject")
def reject_command(
    id: str = ID_ARGUMENT, step: str = STEP_ARGUMENT, comment: str | None = COMMENT_OPTION
) -> int:
    """Reject a waiting approval step: it fails with kind rejected."""
    return _decide(id, step, "rejected", comment)


@workflow_app.command("pending")
def pending_command(
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="Output format."),
) -> None:
    """Every approval step waiting for a decision, across executions, oldest first."""
    from automatosx.store import opened_store
    from automatosx.views.approvals import pending_document

    with opened_store(create=False) as store:  # a reader creates nothing
        pending = store.pending_approvals()
    if format is OutputFormat.json:
        print_json([pending_document(p) for p in pending])
        return
    if not pending:
        err_console.print("No approval is waiting for a decision.")
        return
    now = time.time()
    write_table(
        console,
        ("Execution", "Workflow", "Step", "Requested", "Expires", "Message"),
        (
            (
                (p.approval.execution_id, None),
                (p.workflow_name, None),
                (p.approval.step_key, None),
                (relative_time(p.approval.requested_at, now), None),
                (_expires_text(p.approval.expires_at, now), None),
                (" ".join((p.approval.message or "").split()), None),
            )
            for p in pending
        ),
    )
    err_console.print(
        "Decide with `ax workflow approve ID STEP` or `ax workflow reject ID STEP` "
        "(optionally --comment TEXT).",
        markup=False,
    )


def _decide(id: str, step: str, decision: ApprovalDecision, comment: str | None) -> int:
    from automatosx.runtime.approvals import decide
    from automatosx.store import opened_store
    from automatosx.store.liveness import lease_is_live

    by = decider()
    with opened_store(create=False) as store:  # nothing to act on: create nothing
        execution, _ = decide(store, id, step, decision, by=by, comment=comment, now=time.time())
        execution = store.get_execution(execution.id)
    console.print(
        f"{decision.capitalize()} step '{step}' of execution {execution.id} (by {by}).",
        markup=False,
    )
    # a submitted one needs nothing more: the deciding command gave it a turn on the workers
    if execution.state == "paused" or (
        execution.queue_name is None and not lease_is_live(execution)
    ):
        why = "is paused" if execution.state == "paused" else "has no runner"
        console.print(
            f"The execution {why}: `ax workflow resume {execution.id}` continues from "
            "the decision.",
            markup=False,
        )
    return 0


def decider() -> str:
    """Who decides: `AX_USER`, else the login name (as the API's `Client.approve`)."""
    from automatosx.api.client import decider as api_decider

    return api_decider()


def _expires_text(expires_at: float | None, now: float) -> str:
    if expires_at is None:
        return "never"
    left = expires_at - now
    if left <= 0:
        return "now (past its deadline)"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            return f"in {int(left // size)}{unit}"
    return f"in {int(left)}s"
