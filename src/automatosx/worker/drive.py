"""The drive job: one submitted execution, driven by this worker with the engine (its
step attempts are jobs of their own, `queue_executor`, run by whichever worker takes them).

The job names only the execution; everything else is in the store. Taking it is taking its
lease (`runtime.control.take_submitted`): a job for an execution that ended, is paused, or
that a live runner holds does nothing (procrastinate may run a stalled job again while its
first worker is frozen rather than dead: the lease, not the job, decides). When the worker
stops the job (its grace period over) the runner has written nothing more: the lease is
released and the reaper of any worker gives the execution a new job, whose runner resumes
it from its step records. An execution whose only work left is approval gates waiting
for people is let go the same way (its job ends, its slot is free): deciding a gate, or its
deadline passing, gives it a new job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from automatosx.api.running import send_trace
from automatosx.errors import LeaseLostError
from automatosx.runtime.control import take_submitted
from automatosx.store.queue_jobs import DRIVE_QUEUE, DRIVE_TASK
from automatosx.worker.queue_executor import QueueExecutor

if TYPE_CHECKING:
    import procrastinate

    from automatosx.runtime.engine import ExecutionRunner
    from automatosx.store.base import Store
    from automatosx.worker.answers import AnswerBoard

log = logging.getLogger(__name__)


def register_drive(app: procrastinate.App, store: Store, answers: AnswerBoard) -> None:
    """The drive task on `app`, running executions from `store`; their attempts are jobs on
    the providers' queues (any worker runs them), answered through `answers`."""

    @app.task(name=DRIVE_TASK, queue=DRIVE_QUEUE)
    async def drive(execution_id: str) -> str:
        execution = await asyncio.to_thread(store.get_execution, execution_id)
        executor = QueueExecutor(store, answers, priority=execution.priority)
        runner = await asyncio.to_thread(take_submitted, store, execution_id, executor=executor)
        if runner is None:
            return "nothing to do"
        runner.release_when_gates_wait = True  # a gate waiting for people holds no slot
        # attempts a dead runner dispatched: stopped wherever they still run
        await asyncio.to_thread(store.cancel_dispatches, execution_id)
        try:
            outcome = await runner.run()
        except asyncio.CancelledError:
            await asyncio.to_thread(_hand_back, store, runner)
            raise
        except LeaseLostError as exc:  # it froze, another worker took over: not an error
            log.warning("%s; this worker's late write was refused", exc)
            return "taken over"
        if outcome.state == "released":
            return "waiting for approval: let go until a gate is decided or its deadline passes"
        await send_trace(runner)
        return outcome.state


def _hand_back(store: Store, runner: ExecutionRunner) -> None:
    """Stopped mid-run by the worker: free the execution for another worker at once."""
    store.release_lease(runner.lease)
