"""What a dead worker leaves behind, found by every worker on its heartbeat.

- Jobs a worker was running when it stopped sending heartbeats (3 missed: presumed dead)
  go back to the queue (procrastinate's stalled-job retry), for any worker to take: an
  attempt runs again (its dispatch is claimed anew, so the dead worker's answer, should it
  come after all, is refused), a turn is taken again (it committed nothing).
- Dispatched attempts still awaited whose job will not run (a draining worker stopped it,
  or it failed) get a new one (`Store.redefer_dispatches`).
- Submitted executions that are executing but have nothing in flight (no attempt out, no
  turn waiting or due) get a turn (`Store.wake_execution`): this covers a turn job that
  failed rather than stalled. Its turn finds what is due, or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

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
    redeferred = await asyncio.to_thread(store.redefer_dispatches)
    if redeferred:
        log.info("%d dispatched attempts whose job had stopped run again", redeferred)
    woken = await asyncio.to_thread(store.wake_unattended)
    if woken:
        log.info("%d executions with nothing in flight get a turn", woken)
