"""The attempt job: one dispatched step attempt, run on this worker.

The worker claims the row (it becomes the attempt's runner, also when it takes over a job
whose first worker went silent), makes the call through the router with the agent as the
workflow defines it (its fallback providers, its `outputSchema` check, its timeout), and
answers; only the current runner's answer is recorded. A cancelled attempt's job is aborted
by procrastinate, which cancels this task: the step's process group is killed on the way
out (`run_attempt`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import TYPE_CHECKING

from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.runtime.step_attempt import compile_output_schema, run_attempt
from automatosx.store.dispatch import ATTEMPT_TASK
from automatosx.worker.queue_executor import QUEUE_PREFIX, attempt_queue
from automatosx.worker.wire import call_from_json, outcome_to_json

if TYPE_CHECKING:
    import procrastinate

    from automatosx.store.base import Store
    from automatosx.worker.provider_limits import ProviderLimiter


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register_attempt(app: procrastinate.App, store: Store, limiter: ProviderLimiter) -> None:
    """The attempt task on `app` (its queue is given per job: the provider's), each call
    within its provider's limit across workers (`limiter`)."""
    me = worker_id()

    @app.task(name=ATTEMPT_TASK)
    async def attempt(dispatch_id: str) -> str:
        data = await asyncio.to_thread(store.claim_dispatch, dispatch_id, me)
        if data is None:
            return "answered or cancelled already"
        call = call_from_json(data)
        registry = AgentRegistry.load(workdir=call.workdir, inline={call.agent_name: call.agent})
        router = Router(registry, workdir=call.workdir)
        schema = call.output_schema
        validator = compile_output_schema(schema) if schema is not None else None
        async with limiter.slot(attempt_queue(call.agent).removeprefix(QUEUE_PREFIX)):
            started = time.time()
            outcome = await run_attempt(router, call, started_at=started, validator=validator)
        recorded = await asyncio.to_thread(
            store.answer_dispatch, dispatch_id, me, outcome_to_json(outcome)
        )
        return "answered" if recorded else "taken over: the answer was refused"
