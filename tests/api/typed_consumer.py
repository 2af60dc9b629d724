"""A small program using the Python API as a team's service would: `test_typing` checks it
with `mypy --strict`, so the API's annotations (and `py.typed`) stay usable."""

from __future__ import annotations

import asyncio
from typing import Any

import automatosx as ax
from automatosx import ExecutionResult, StepStatus


def review(prompt: str, *, execution_id: str, step_key: str, attempt: int, context: Any) -> str:
    return f"{step_key}#{attempt}: {prompt}"


async def summarise(prompt: str, **_: Any) -> dict[str, int]:
    return {"length": len(prompt)}


def run(db: str) -> ExecutionResult:
    workflow: ax.Workflow = ax.Workflow.from_dict(
        {"name": "typed", "steps": [{"key": "a", "agent": "reviewer", "prompt": "p"}]}
    )
    result = ax.run_workflow(workflow, {"x": 1}, agents={"reviewer": review}, db=db)
    state: str = result.state
    execution_id: str = result.execution_id
    outputs: dict[str, Any] = result.step_results
    step: StepStatus = result.steps["a"]
    attempts: int = step.attempts
    kind: str | None = step.error_kind
    document: dict[str, Any] = result.to_dict()
    del state, execution_id, outputs, attempts, kind, document
    return result


async def run_async(path: str) -> ExecutionResult:
    workflow = ax.load_workflow(path)
    return await ax.run_workflow_async(workflow, agents={"summary": summarise})


def steer(db: str, execution_id: str) -> list[str]:
    client = ax.Client(db=db)
    ids = [run.execution_id for run in client.executions(limit=5)]
    client.pause(execution_id)
    resumed: ExecutionResult = client.resume(execution_id, agents={"reviewer": review})
    client.approve(execution_id, "gate", comment=None)
    client.reject(execution_id, "gate", "no")
    client.cancel(execution_id)
    types: list[str] = [event.type for event in client.events(execution_id)]
    return ids + types + [resumed.state]


def problems() -> list[dict[str, str]]:
    try:
        ax.Workflow.from_dict({})
    except ax.WorkflowValidationError as exc:
        return exc.problems
    return []


def failing(prompt: str, **_: Any) -> str:
    raise ax.StepError("rate_limit", "try later", retry_after_s=1.0)


if __name__ == "__main__":
    asyncio.run(run_async("flow.yaml"))
