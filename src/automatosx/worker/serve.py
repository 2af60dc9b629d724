"""The `ax worker` process: claims drive jobs until SIGINT or SIGTERM.

On a stop signal procrastinate stops claiming, lets the running jobs go on for the grace
period, then cancels them: each runner stops its attempts (their processes are killed),
writes nothing more and releases its execution, which another worker resumes. Heartbeats
every `AX_WORKER_HEARTBEAT_S` (10 s) tell the queue this worker is alive; after three
missed ones its jobs are another worker's (`reaper`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from automatosx.errors import AxError
from automatosx.settings import is_postgres_url, worker_heartbeat_s
from automatosx.store.postgres import PostgresStore
from automatosx.store.queue_jobs import DRIVE_QUEUE, NEEDS_POSTGRES
from automatosx.worker.drive import register_drive
from automatosx.worker.queue import ensure_job_queue, job_queue_app
from automatosx.worker.reaper import reap_forever

DEFAULT_GRACE_S = 30.0


def serve(url: str, *, concurrency: int, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Run a worker on the store at `url` (PostgreSQL, else AxError) until a stop signal."""
    heartbeat = worker_heartbeat_s()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(url, concurrency=concurrency, heartbeat_s=heartbeat, grace_s=grace_s))


async def _serve(url: str, *, concurrency: int, heartbeat_s: float, grace_s: float) -> None:
    if not is_postgres_url(url):
        raise AxError(NEEDS_POSTGRES)
    # a connection for each running execution's commits, and one for the reaper
    store = ensure_job_queue(PostgresStore(url, max_connections=concurrency + 2))
    app = job_queue_app(store, connections=concurrency + 1)  # claims, finishes, LISTEN
    register_drive(app, store)
    stop = asyncio.Event()
    try:
        async with app.open_async():
            reaper = asyncio.create_task(reap_forever(app, store, heartbeat_s, stop))
            try:
                await app.run_worker_async(
                    queues=[DRIVE_QUEUE],
                    concurrency=concurrency,
                    name=f"{socket.gethostname()}:{os.getpid()}",
                    update_heartbeat_interval=heartbeat_s,
                    stalled_worker_timeout=3 * heartbeat_s,
                    shutdown_graceful_timeout=grace_s,
                    install_signal_handlers=True,
                )
            finally:
                stop.set()
                await reaper
    finally:
        store.close()
