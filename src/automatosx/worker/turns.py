"""The turn job: one turn of a submitted execution (`runtime.turn.take_turn`), for what
is not an attempt's answer: its first turn after `submit`, a resume, a gate's decision, a
cancel or pause, a child that ended, a time that came (a retry, a gate's deadline, the
workflow timeout: the job was deferred for then). It names only the execution; a turn
that finds nothing to act on writes nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from automatosx.api.running import send_ended_trace
from automatosx.runtime.turn import take_turn
from automatosx.store.queue_jobs import TURN_QUEUE, TURN_TASK
from automatosx.worker.attempt import worker_id

if TYPE_CHECKING:
    import procrastinate

    from automatosx.store.base import Store


def register_turn(app: procrastinate.App, store: Store) -> None:
    """The turn task on `app`, taking turns of executions in `store`."""
    me = worker_id()

    @app.task(name=TURN_TASK, queue=TURN_QUEUE)
    async def turn(execution_id: str) -> str:
        result = await asyncio.to_thread(take_turn, store, execution_id, by=me)
        if result.ended:
            await send_ended_trace(store, execution_id)
        return f"{result.state}, {result.started} attempts started"
