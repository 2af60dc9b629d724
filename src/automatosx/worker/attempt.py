"""The attempt job: one dispatched step attempt, run on this worker.

The worker claims the row (it becomes the attempt's runner, also when it takes over a job
whose first worker went silent), makes the call through the router with the agent as the
workflow defines it (its fallback providers, its `outputSchema` check, its timeout, the
result cache when the step is cached), then takes the execution's next turn with the
outcome (`runtime.turn`): the result and whatever it makes ready commit together, and only
the current runner's answer is taken. A job procrastinate runs again because its worker
went silent does not call: its turn closes the lost attempt as interrupted and starts the
step's next one (a job of its own), so the history shows what happened. A cancelled
attempt's job is aborted by procrastinate, which cancels this task: the step's process
group is killed on the way out (`run_attempt`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING

from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.api.running import send_ended_trace
from automatosx.runtime.cache import CachingExecutor
from automatosx.runtime.executor import Attempt, LocalExecutor
from automatosx.runtime.step_attempt import compile_output_schema
from automatosx.runtime.turn import Answer, take_turn
from automatosx.runtime.wire import QUEUE_PREFIX, attempt_queue, cache_from_json, call_from_json
from automatosx.store.async_store import AsyncStore
from automatosx.store.dispatch import ATTEMPT_TASK

if TYPE_CHECKING:
    import procrastinate

    from automatosx.store.base import Store
    from automatosx.worker.provider_limits import ProviderLimiter

CACHE_PATIENCE_S = 30.0  # how long a cache lookup retries a lost connection


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register_attempt(app: procrastinate.App, store: Store, limiter: ProviderLimiter) -> None:
    """The attempt task on `app` (its queue is given per job: the provider's), each call
    within its provider's limit across workers (`limiter`)."""
    me = worker_id()

    @app.task(name=ATTEMPT_TASK)
    async def attempt(dispatch_id: str) -> str:
        claimed = await asyncio.to_thread(store.claim_dispatch, dispatch_id, me)
        if claimed is None:
            return "answered or cancelled already"
        execution_id, data = claimed.execution_id, claimed.call
        call = call_from_json(data)
        if claimed.lost_from is not None:  # its worker went silent mid-call: a new attempt
            lost = Answer(dispatch_id, me, step_key=call.step_key, attempt=call.attempt)
            await asyncio.to_thread(take_turn, store, execution_id, answer=lost, by=me)
            return f"{claimed.lost_from} went silent: the step runs again as a new attempt"
        registry = AgentRegistry.load(workdir=call.workdir, inline={call.agent_name: call.agent})
        router = Router(registry, workdir=call.workdir)
        schema = call.output_schema
        validator = compile_output_schema(schema) if schema is not None else None
        executor = CachingExecutor(
            LocalExecutor(router),
            AsyncStore(store),
            mode="use",
            providers=router.provider_order,
            patience_s=CACHE_PATIENCE_S,
        )
        try:
            async with limiter.slot(attempt_queue(call.agent).removeprefix(QUEUE_PREFIX)):
                started = time.time()
                outcome = await executor.execute(
                    Attempt(call, started, validator, cache_from_json(data))
                )
        except asyncio.CancelledError:  # drained (or aborted: then this changes nothing)
            _released(store, dispatch_id, me)
            raise
        answer = Answer(dispatch_id, me, outcome)
        result = await asyncio.to_thread(take_turn, store, execution_id, answer=answer, by=me)
        if result.refused:
            return "taken over: the answer was refused"
        if result.ended:
            await send_ended_trace(store, execution_id)
        return f"answered; {result.state}, {result.started} attempts started"


def _released(store: Store, dispatch_id: str, me: str) -> None:
    """Says the attempt was stopped, not lost (`Store.release_dispatch`), in this thread:
    the task is being cancelled, so there is no awaiting. Best effort: if the store cannot
    be reached, the attempt counts as lost."""
    try:
        store.release_dispatch(dispatch_id, me)
    except Exception:
        logging.getLogger(__name__).warning("could not hand attempt %s on", dispatch_id)
