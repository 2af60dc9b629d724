"""One step instance's attempts, oldest first: the document the HTTP API serves at
`GET /api/v1/executions/{id}/steps/{key}/attempts` and the dashboard's execution page shows
(SPEC section 10: each attempt's prompt and output, tokens and cost).

An attempt is a row of the instance's history, or its latest one, which the instance itself
holds (`store.list_step_executions` merges them). Prompts, outputs and errors are as the
store keeps them, secrets already `***`: the read model shows them and never unmasks. Only
a completed attempt has an output (the history keeps none for the attempts that failed);
an approval gate, a sub-workflow step and an attempt stored before prompts were have a
null `prompt`. A forEach step's own entry has no attempts: its items (`review[3]`) do.
"""

from __future__ import annotations

from typing import Any

from automatosx.store.base import Store, instance_of
from automatosx.store.records import ExecutionRecord, StepExecutionRecord
from automatosx.views.execution import error_text
from automatosx.views.timestamps import iso


def attempts_document(store: Store, execution: ExecutionRecord, key: str) -> list[dict[str, Any]]:
    """The attempts of step instance `key` (a step's, or an item's: `review[3]`) of
    `execution`, in order; an unknown key is NotFoundError naming the closest one."""
    instance = instance_of(store, execution, key)
    attempts = store.list_step_executions(execution.id, instances=[instance])
    return [attempt_document(attempt) for attempt in attempts if attempt.step_key == key]


def attempt_document(attempt: StepExecutionRecord) -> dict[str, Any]:
    """One attempt: who served it, what it was asked and answered, when, and its usage."""
    return {
        "attempt": attempt.attempt,
        "state": attempt.state,
        "agent": attempt.agent,
        "provider": attempt.provider,
        "model": attempt.model,
        "prompt": attempt.prompt,
        "output": attempt.output,
        "error": error_text(attempt.error_kind, attempt.error_message),
        "errorKind": attempt.error_kind,
        "startedAt": iso(attempt.started_at),
        "completedAt": iso(attempt.completed_at),
        "durationMs": attempt.duration_ms,
        "tokensIn": attempt.tokens_in,
        "tokensOut": attempt.tokens_out,
        "costUsd": attempt.cost_usd,
    }
