"""A dispatched attempt on the wire: the provider call a worker makes (with the step's
cache rule) as JSON in its row of `workflow_dispatched_attempts`, and the outcome it answers
with. The agent travels as its definition: `${NAME}` references in its `env` are taken from
the worker's environment when the call is made there; no secret value is written. The
queue an attempt goes to is its agent's first provider's, so it runs where that is."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from automatosx.runtime.cache_policy import CachePolicy, CacheUse
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.store.records import CacheEntry

QUEUE_PREFIX = "ax-provider:"


def attempt_queue(agent: AgentSpec) -> str:
    """The queue of an agent's attempts: its first provider's (a worker without that
    provider does not listen there; the fallbacks run where the first one does), or
    `default` for an agent that names none (the router picks an available one there)."""
    order = agent.provider_order()
    return QUEUE_PREFIX + (order[0] if order else "default")


def call_to_json(call: ProviderCall, cache: CachePolicy | None = None) -> dict[str, Any]:
    return {
        "cache": None if cache is None else {"ttlMs": cache.ttl_ms},
        "executionId": call.execution_id,
        "stepKey": call.step_key,
        "attempt": call.attempt,
        "agentName": call.agent_name,
        "agent": call.agent.model_dump(mode="json", exclude_none=True, by_alias=True),
        "prompt": call.prompt,
        "context": call.context,
        "timeoutS": call.timeout_s,
        "outputSchema": call.output_schema,
        "workdir": str(call.workdir),
    }


def call_from_json(data: dict[str, Any]) -> ProviderCall:
    return ProviderCall(
        execution_id=data["executionId"],
        step_key=data["stepKey"],
        attempt=int(data["attempt"]),
        agent_name=data["agentName"],
        agent=AgentSpec.model_validate(data["agent"]),
        prompt=data["prompt"],
        context=data["context"],
        timeout_s=data["timeoutS"],
        output_schema=data["outputSchema"],
        workdir=Path(data["workdir"]),
    )


def cache_from_json(data: dict[str, Any]) -> CachePolicy | None:
    """The step's cache rule (None: the cache never answers it)."""
    rule = data.get("cache")
    return None if rule is None else CachePolicy(ttl_ms=rule["ttlMs"])


def outcome_to_json(outcome: AttemptOutcome) -> dict[str, Any]:
    result, error = outcome.result, outcome.error
    return {
        "startedAt": outcome.started_at,
        "finishedAt": outcome.finished_at,
        "result": None
        if result is None
        else {
            "output": result.output, "provider": result.provider, "model": result.model,
            "tokensIn": result.tokens_in, "tokensOut": result.tokens_out,
            "costUsd": result.cost_usd,
        },
        "error": None
        if error is None
        else {"kind": error.kind, "message": error.message, "retryAfterS": error.retry_after_s},
        "cache": _cache_use_to_json(outcome.cache),
    }  # fmt: skip


def outcome_from_json(step_key: str, attempt: int, data: dict[str, Any]) -> AttemptOutcome:
    result, error = data["result"], data["error"]
    return AttemptOutcome(
        step_key=step_key,
        attempt=attempt,
        started_at=float(data["startedAt"]),
        finished_at=float(data["finishedAt"]),
        result=None
        if result is None
        else ProviderResult(
            output=result["output"], provider=result["provider"], model=result["model"],
            tokens_in=result["tokensIn"], tokens_out=result["tokensOut"],
            cost_usd=result["costUsd"],
        ),
        error=None
        if error is None
        else StepError(error["kind"], error["message"], retry_after_s=error["retryAfterS"]),
        cache=_cache_use_from_json(data.get("cache")),
    )  # fmt: skip


def _cache_use_to_json(use: CacheUse | None) -> dict[str, Any] | None:
    if use is None:
        return None
    hit = None if use.hit is None else dataclasses.asdict(use.hit)
    return {"key": use.key, "ttlMs": use.policy.ttl_ms, "hit": hit}


def _cache_use_from_json(data: dict[str, Any] | None) -> CacheUse | None:
    if data is None:
        return None
    hit = None if data["hit"] is None else CacheEntry(**data["hit"])
    return CacheUse(data["key"], CachePolicy(ttl_ms=data["ttlMs"]), hit)
