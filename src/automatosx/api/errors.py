"""The errors the API raises. `WorkflowValidationError` and `StepError` are the project's
own (the CLI reports the same ones); `RunningLoopError` is the API's."""

from __future__ import annotations

from automatosx.errors import (
    AxError,
    NotFoundError,
    StateConflictError,
    StepError,
    WorkflowValidationError,
)

__all__ = [
    "AxError",
    "NotFoundError",
    "RunningLoopError",
    "StateConflictError",
    "StepError",
    "WorkflowValidationError",
]


class RunningLoopError(RuntimeError):
    """A blocking call (`run_workflow`, `Client.resume`) made from inside a running event
    loop, which it would block: await its async variant instead."""


def refuse_running_loop(name: str, instead: str) -> None:
    """Raise `RunningLoopError` if an event loop is running in this thread."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RunningLoopError(
        f"{name}() cannot be called from inside a running event loop (it would block the "
        f"loop while the workflow runs): use `await {instead}(...)` instead"
    )
