"""The seam between the engine and wherever an attempt runs.

The engine decides *what* runs; an `Executor` runs one attempt and answers with its
outcome, like httpx's one-method transport: `execute(attempt) -> outcome`. Cancelling the
awaiting task cancels the attempt (the local executor kills the step's process group; a
job-queue executor would tell the worker). `LocalExecutor`, today's only implementation,
runs attempts as asyncio tasks of this process through the router; a job-queue executor for
`ax worker` can come later without touching the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from automatosx.agents.base import ProviderCall, StepRunner
from automatosx.runtime.step_attempt import AttemptOutcome, run_attempt

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from automatosx.runtime.cache_policy import CachePolicy


@dataclass(slots=True)
class Attempt:
    """One attempt to run: the provider call, when it started, how to check its output,
    and whether the result cache may answer it (`runtime.cache`)."""

    call: ProviderCall
    started_at: float
    validator: Validator | None = None
    cache: CachePolicy | None = None


class Executor(Protocol):
    async def execute(self, attempt: Attempt) -> AttemptOutcome:
        """Run the attempt to its end; a failure is an outcome, not an exception.
        Cancellation (`CancelledError`) stops everything the attempt started first."""
        ...


class LocalExecutor:
    """Attempts in this process: the router (agent -> providers, fallback) under the
    attempt's timeout, then the output checked against the step's `outputSchema`."""

    def __init__(self, runner: StepRunner) -> None:
        self.runner = runner

    async def execute(self, attempt: Attempt) -> AttemptOutcome:
        return await run_attempt(
            self.runner, attempt.call, started_at=attempt.started_at, validator=attempt.validator
        )
