"""The analytics document of SPEC section 11: what `ax workflow stats --format json` prints,
`Client.stats` returns and `GET /api/v1/stats` serves.

The store computes every figure (`Store.stats`, see `store/stats.py` for what a run, a
duration and the critical path are); this module only names them as the contract does,
turns counts into rates (fractions rounded to 4 places, as `successRate` in `list`; null
when there is nothing to divide by) and folds the error buckets into groups.

    {"since": ISO-8601,
     "workflows": [{name, executions, completed, failed, successRate, p50DurationMs,
                    p95DurationMs, parallelEfficiency, checkpointOverheadMs, tokensIn,
                    tokensOut, costUsd}],            by name
     "steps": [{workflowName, stepKey, runs, failed, failureRate, retried, retryRate,
                retrySuccessRate, p50DurationMs, p95DurationMs, costUsd}],
                                                     by workflow, then the file's order
     "errors": [{kind, message, count, lastSeenAt,
                 steps: [{workflowName, stepKey, count}]}]}   most frequent first
"""

from __future__ import annotations

from typing import Any

from automatosx.store.base import Store
from automatosx.store.stats import ErrorStats, StepStats, WorkflowStats
from automatosx.views.timestamps import iso


def stats_document(store: Store, *, since: float, workflow: str | None = None) -> dict[str, Any]:
    """The statistics of the executions started at or after `since` (epoch seconds), of
    every workflow or only `workflow` (a name the store does not know is NotFoundError)."""
    if workflow is not None:
        store.get_workflow(workflow)  # an unknown name is an error, not an empty document
    report = store.stats(since=since, workflow_name=workflow)
    return {
        "since": iso(since),
        "workflows": [workflow_entry(w) for w in sorted(report.workflows, key=lambda w: w.name)],
        "steps": [
            step_entry(s)
            for s in sorted(report.steps, key=lambda s: (s.workflow_name, s.position, s.step_key))
        ],
        "errors": error_groups(report.errors),
    }


def workflow_entry(stats: WorkflowStats) -> dict[str, Any]:
    efficiency = stats.parallel_efficiency
    overhead = stats.checkpoint_overhead_ms
    return {
        "name": stats.name,
        "executions": stats.executions,
        "completed": stats.completed,
        "failed": stats.failed,
        "successRate": rate(stats.completed, stats.finished),  # of the finished ones
        "p50DurationMs": stats.p50_duration_ms,
        "p95DurationMs": stats.p95_duration_ms,
        "parallelEfficiency": None if efficiency is None else round(efficiency, 4),
        "checkpointOverheadMs": None if overhead is None else round(overhead, 3),
        "tokensIn": stats.tokens_in,
        "tokensOut": stats.tokens_out,
        "costUsd": money(stats.cost_usd),
    }


def step_entry(stats: StepStats) -> dict[str, Any]:
    return {
        "workflowName": stats.workflow_name,
        "stepKey": stats.step_key,
        "runs": stats.runs,
        "failed": stats.failed,
        "failureRate": rate(stats.failed, stats.runs),
        "retried": stats.retried,
        "retryRate": rate(stats.retried, stats.runs),
        "retrySuccessRate": rate(stats.retried_completed, stats.retried),
        "p50DurationMs": stats.p50_duration_ms,
        "p95DurationMs": stats.p95_duration_ms,
        "costUsd": money(stats.cost_usd),
    }


def error_groups(buckets: list[ErrorStats]) -> list[dict[str, Any]]:
    """One group per (kind, masked message) over the steps it happened in: most frequent
    first (then the most recent), each group's steps likewise by count."""
    groups: dict[tuple[str | None, str | None], list[ErrorStats]] = {}
    for bucket in buckets:
        groups.setdefault((bucket.kind, bucket.message), []).append(bucket)
    entries = []
    for (kind, message), members in groups.items():
        seen = [m.last_seen_at for m in members if m.last_seen_at is not None]
        last = max(seen) if seen else None
        members.sort(key=lambda m: (-m.count, m.workflow_name, m.step_key))
        entries.append(
            (
                -sum(m.count for m in members),
                -(last or 0.0),
                kind or "",
                message or "",
                {
                    "kind": kind,
                    "message": message,
                    "count": sum(m.count for m in members),
                    "lastSeenAt": iso(last),
                    "steps": [
                        {"workflowName": m.workflow_name, "stepKey": m.step_key, "count": m.count}
                        for m in members
                    ],
                },
            )
        )
    entries.sort(key=lambda entry: entry[:4])
    return [entry[4] for entry in entries]


def rate(part: int, whole: int) -> float | None:
    """`part / whole` as a fraction rounded to 4 places; None when `whole` is 0."""
    return None if whole == 0 else round(part / whole, 4)


def money(usd: float | None) -> float | None:
    return None if usd is None else round(usd, 8)
