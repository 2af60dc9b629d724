"""The executor of an execution a worker drives: each attempt a job on its provider's
queue, run by whichever worker listens there (this one included), so the steps of one
execution spread over the workers and each runs where its provider is.

The engine sees an ordinary `Executor`: `execute(attempt)` returns the outcome, and
cancelling it cancels the attempt (`cancel_dispatch` aborts the job: procrastinate cancels
the task running it, which kills the step's process group). The answers arrive through
the worker's `AnswerBoard` (LISTEN/NOTIFY, with a slow poll behind it).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from automatosx.worker.wire import call_to_json, outcome_from_json

if TYPE_CHECKING:
    from automatosx.definition.models import AgentSpec
    from automatosx.runtime.executor import Attempt
    from automatosx.runtime.step_attempt import AttemptOutcome
    from automatosx.store.base import Store
    from automatosx.worker.answers import AnswerBoard

QUEUE_PREFIX = "ax-provider:"


def attempt_queue(agent: AgentSpec) -> str:
    """The queue of an agent's attempts: its first provider's (a worker without that
    provider does not listen there; the fallbacks run where the first one does), or
    `default` for an agent that names none (the router picks an available one there)."""
    order = agent.provider_order()
    return QUEUE_PREFIX + (order[0] if order else "default")


class QueueExecutor:
    def __init__(self, store: Store, answers: AnswerBoard, *, priority: int) -> None:
        self.store = store
        self.answers = answers
        self.priority = priority

    async def execute(self, attempt: Attempt) -> AttemptOutcome:
        call = attempt.call
        dispatch_id = str(uuid.uuid4())
        answer = self.answers.expect(dispatch_id)
        try:
            await asyncio.to_thread(
                self.store.dispatch_attempt,
                dispatch_id,
                execution_id=call.execution_id,
                step_key=call.step_key,
                attempt=call.attempt,
                queue_name=attempt_queue(call.agent),
                call=call_to_json(call),
                priority=self.priority,
            )
            data = await answer
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self.store.cancel_dispatch, dispatch_id))
            raise
        finally:
            self.answers.forget(dispatch_id)
        outcome = outcome_from_json(call.step_key, call.attempt, data)
        return replace(outcome, started_at=attempt.started_at)  # the engine's record's start
