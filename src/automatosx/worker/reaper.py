"""What a dead worker leaves behind, found by every worker on its heartbeat.

- Jobs a worker was running when it stopped sending heartbeats (3 missed: presumed dead)
  go back to the queue (procrastinate's stalled-job retry), for any worker to take.
- Submitted executions that are not finished or paused, have no live runner and no job
  waiting or running get one (`Store.enqueue_drive`; the lock keeps it to one). This is
  the store's word, not the queue's: it also covers a job that failed or was stopped.
  One a worker let go because only approval gates wait gets one once a gate is decided
  (at once, by the deciding command) or its earliest deadline comes (`idle_until`).
- Dispatched attempts still awaited whose job will not run (a draining worker stopped it,
  or it failed) get a new one (`Store.redefer_dispatches`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from automatosx.runtime.control import ACTIVE_STATES
from automatosx.store.liveness import lease_is_live

if TYPE_CHECKING:
    import procrastinate

    from automatosx.store.base import Store

log = logging.getLogger(__name__)


async def reap_forever(
    app: procrastinate.App, store: Store, heartbeat_s: float, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await reap_once(app, store, heartbeat_s)
        except Exception as exc:  # the database is away: try again next heartbeat
            log.warning("the reaper could not look for stalled work: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), heartbeat_s)


async def reap_once(app: procrastinate.App, store: Store, heartbeat_s: float) -> None:
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=3 * heartbeat_s)
    for job in stalled:
        await app.job_manager.retry_job(job)
        log.info("job %s of a worker gone silent runs again", job.id)
    await asyncio.to_thread(requeue_unattended, store)
    redeferred = await asyncio.to_thread(store.redefer_dispatches)
    if redeferred:
        log.info("%d dispatched attempts whose job had stopped run again", redeferred)


def requeue_unattended(store: Store) -> list[str]:
    """A drive job for each submitted execution nobody runs or is about to (their IDs),
    except one a worker let go because only approval gates wait (`idle_until`): its job
    comes with a decision (the deciding command defers it), or here once that time comes."""
    now = time.time()
    given: list[str] = []
    for execution in store.list_executions(limit=100_000, states=ACTIVE_STATES):
        if execution.queue_name is None or lease_is_live(execution, now):
            continue
        if execution.idle_until is not None and execution.idle_until > now:
            continue
        if store.enqueue_drive(execution.id):
            given.append(execution.id)
    return given
