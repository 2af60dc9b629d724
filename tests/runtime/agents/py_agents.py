"""Test callables for the `python` provider (imported as `py_agents:NAME` with this folder
on the path via the workflow's working directory)."""

from __future__ import annotations

import asyncio
from typing import Any

from automatosx.errors import StepError


def sync_echo(
    prompt: str, *, execution_id: str, step_key: str, attempt: int, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "step": step_key,
        "attempt": attempt,
        "context": context,
        "execution": execution_id,
    }


async def async_upper(prompt: str, **_: Any) -> str:
    await asyncio.sleep(0.01)
    return prompt.upper()


def rate_limited(prompt: str, **_: Any) -> str:
    raise StepError("rate_limit", "slow down")


def broken(prompt: str, **_: Any) -> str:
    raise ValueError("boom")


def not_json(prompt: str, **_: Any) -> object:
    return object()
