"""In-process `python` provider callables used by the benchmark workflows.

They do as little as possible so that what is measured is the orchestrator's own cost.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


def noop(prompt: str, **_: Any) -> str:
    """A step that does nothing: the chain and fan-out shapes measure pure overhead."""
    return "ok"


async def anoop(prompt: str, **_: Any) -> str:
    """The same no-op as a coroutine: what a step costs without the worker-thread hand-off
    that every sync callable needs."""
    return "ok"


async def numbers(prompt: str, **_: Any) -> list[int]:
    """A list of as many numbers as the prompt says (`1000`): what a forEach fans out over."""
    return list(range(int(prompt.strip())))


async def sleep(prompt: str, **_: Any) -> str:
    """Sleeps for the number of seconds given as the prompt (`0.1`): the diamond shape."""
    await asyncio.sleep(float(prompt.strip()))
    return "slept"


def mark_start(prompt: str, **_: Any) -> str:
    """Records when the first step started, for the start-up-to-first-step figure."""
    path = os.environ["AX_BENCH_MARK"]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{time.time()}\n")
    return "marked"


async def block_first_attempt(prompt: str, *, attempt: int, execution_id: str, **_: Any) -> str:
    """First attempt: record the execution ID and hang (the benchmark kills the runner here).
    A later attempt (after `resume`) records when it started and returns."""
    path = os.environ["AX_BENCH_MARK"]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{time.time()} {attempt} {execution_id}\n")
    if attempt == 1:
        await asyncio.sleep(3600)
    return "resumed"
