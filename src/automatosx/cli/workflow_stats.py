"""`ax workflow stats`: success rates, durations, retries and common errors (SPEC section 11).

The figures come from the store's own queries over the executions started within `--since`
(`views.stats` names them); the tables show the same document as `--format json`, with
rates as percentages and durations in human units. Names, step keys and error messages came
from files and agents: they are printed with control characters neutralised.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.completion import complete_workflow_name
from automatosx.cli.output import (
    OutputFormat,
    console,
    err_console,
    human_duration,
    print_json,
    relative_time,
    write_table,
)
from automatosx.views.timestamps import DEFAULT_STATS_SINCE

SHOWN_ERRORS = 10  # the table's; the JSON document has every group
MESSAGE_WIDTH = 100


@workflow_app.command("stats")
def stats_command(
    workflow: str | None = typer.Option(
        None, "--workflow", metavar="NAME", help="Only this workflow's executions.",
        autocompletion=complete_workflow_name,
    ),
    since: str = typer.Option(
        DEFAULT_STATS_SINCE, "--since", metavar="AGE",
        help="Executions started within this age: 30s, 15m, 12h, 7d or 2w.",
    ),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="Output format."),
) -> None:  # fmt: skip
    """Success rates, durations, retries and the most common errors of recent executions,
    per workflow and per step."""
    from automatosx.store import opened_store
    from automatosx.views.stats import stats_document
    from automatosx.views.timestamps import parse_age

    cutoff = time.time() - parse_age(since)
    with opened_store(create=False) as store:  # a reader creates nothing
        document = stats_document(store, since=cutoff, workflow=workflow)
    if format is OutputFormat.json:
        print_json(document)
        return
    if not document["workflows"]:
        err_console.print(f"No executions started in the last {since.strip()}.", markup=False)
        return
    _workflows_table(document["workflows"])
    console.print()
    _steps_table(document["steps"])
    if document["errors"]:
        console.print()
        _errors_table(document["errors"])


def _workflows_table(entries: list[dict[str, Any]]) -> None:
    write_table(
        console,
        ("Workflow", "Executions", "Completed", "Failed", "Success", "p50", "p95", "Parallel",
         "Checkpoints", "Tokens in/out", "Cost"),
        (
            (
                (w["name"], "bold"),
                (str(w["executions"]), None),
                (str(w["completed"]), "green" if w["completed"] else None),
                (str(w["failed"]), "red" if w["failed"] else None),
                (_percent(w["successRate"]), None),
                (human_duration(w["p50DurationMs"]), None),
                (human_duration(w["p95DurationMs"]), None),
                (_percent(w["parallelEfficiency"]), None),
                (_ms(w["checkpointOverheadMs"]), None),
                (_tokens(w["tokensIn"], w["tokensOut"]), None),
                (_usd(w["costUsd"]), None),
            )
            for w in entries
        ),
    )  # fmt: skip


def _steps_table(entries: list[dict[str, Any]]) -> None:
    write_table(
        console,
        ("Workflow", "Step", "Runs", "Failed", "Retried", "Retry success", "p50", "p95", "Cost"),
        (
            (
                (s["workflowName"], None),
                (s["stepKey"], "bold"),
                (str(s["runs"]), None),
                (_count_and_rate(s["failed"], s["failureRate"]), "red" if s["failed"] else None),
                (_count_and_rate(s["retried"], s["retryRate"]), None),
                (_percent(s["retrySuccessRate"]), None),
                (human_duration(s["p50DurationMs"]), None),
                (human_duration(s["p95DurationMs"]), None),
                (_usd(s["costUsd"]), None),
            )
            for s in entries
        ),
    )


def _errors_table(groups: list[dict[str, Any]]) -> None:
    now = time.time()
    shown = groups[:SHOWN_ERRORS]
    write_table(
        console,
        ("Count", "Kind", "Last seen", "Steps", "Message"),
        (
            (
                (str(g["count"]), "red"),
                (g["kind"] or "-", None),
                (relative_time(_epoch(g["lastSeenAt"]), now), None),
                (", ".join(_step_name(s) for s in g["steps"]), None),
                (_one_line(g["message"]), None),
            )
            for g in shown
        ),
    )
    if len(groups) > len(shown):
        err_console.print(
            f"{len(groups) - len(shown)} more kinds of error: `--format json` lists them all.",
            markup=False,
        )


def _step_name(step: dict[str, Any]) -> str:
    return f"{step['workflowName']}/{step['stepKey']} ({step['count']})"


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _one_line(message: str | None) -> str:
    text = " ".join((message or "").split())
    return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 1] + "…"


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.0%}"


def _count_and_rate(count: int, fraction: float | None) -> str:
    return str(count) if not count or fraction is None else f"{count} ({fraction:.0%})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


def _tokens(tokens_in: int | None, tokens_out: int | None) -> str:
    if tokens_in is None and tokens_out is None:
        return "-"
    return f"{tokens_in or 0}/{tokens_out or 0}"


def _usd(cost: float | None) -> str:
    return "-" if cost is None else f"${cost:.4f}"
