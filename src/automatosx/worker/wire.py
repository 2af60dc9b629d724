"""A dispatched attempt on the wire: the provider call a worker makes and the outcome it
answers with, as JSON (the row of `workflow_dispatched_attempts`). The agent travels as its
definition: `${NAME}` references in its `env` are taken from the worker's environment when
the call is made there, as they would be from the driver's; no secret value is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from automatosx.runtime.step_attempt import AttemptOutcome


def call_to_json(call: ProviderCall) -> dict[str, Any]:
    return {
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
    )  # fmt: skip
