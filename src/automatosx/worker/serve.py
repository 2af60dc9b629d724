"""The `ax worker` process: claims turn jobs (one loop) and attempt jobs of its providers'
queues (another) until SIGINT or SIGTERM.

On a stop signal procrastinate stops claiming, lets the running jobs go on for the grace
period, then cancels them: an attempt cancelled so has its processes killed and answers
nothing, and the reaper of any worker gives its dispatch a new job. Heartbeats
every `AX_WORKER_HEARTBEAT_S` (10 s) tell the queue this worker is alive; after three
missed ones its jobs are another worker's (`reaper`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import Any, get_args

from automatosx.definition.models import ProviderName
from automatosx.errors import AxError
from automatosx.runtime.wire import QUEUE_PREFIX
from automatosx.settings import is_postgres_url, provider_limits, worker_heartbeat_s
from automatosx.store.postgres import PostgresStore
from automatosx.store.queue_jobs import NEEDS_POSTGRES, TURN_QUEUE
from automatosx.worker.attempt import register_attempt
from automatosx.worker.provider_limits import ProviderLimiter
from automatosx.worker.queue import ensure_job_queue, job_queue_app
from automatosx.worker.reaper import reap_forever
from automatosx.worker.turns import register_turn

DEFAULT_GRACE_S = 30.0
FETCH_POLL_S = 0.2


def serve(
    url: str,
    *,
    concurrency: int,
    queues: Sequence[str] = (),
    grace_s: float = DEFAULT_GRACE_S,
) -> None:
    """Run a worker on the store at `url` (PostgreSQL, else AxError) until a stop signal:
    up to `concurrency` turns taken and `concurrency` attempts run at once, the
    attempts of the providers named in `queues` (default: every provider's)."""
    heartbeat = worker_heartbeat_s()
    names = list(queues) or provider_queues()
    limits = provider_limits()
    for what, given in (("queue", names), ("provider in AX_PROVIDER_LIMITS", list(limits))):
        unknown = sorted(set(given) - set(provider_queues()))
        if unknown:
            raise AxError(
                f"unknown {what} {unknown[0]!r}: a provider's name, one of "
                + ", ".join(provider_queues())
            )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(
        _serve(
            url, concurrency=concurrency, queues=names, limits=limits, heartbeat_s=heartbeat,
            grace_s=grace_s,
        )
    )  # fmt: skip


def provider_queues() -> list[str]:
    """Every attempt queue: one per provider, and `default` (agents that name none)."""
    return [*get_args(ProviderName), "default"]


async def _serve(
    url: str,
    *,
    concurrency: int,
    queues: list[str],
    limits: dict[str, int],
    heartbeat_s: float,
    grace_s: float,
) -> None:
    if not is_postgres_url(url):
        raise AxError(NEEDS_POSTGRES)
    # connections: turns (each holds one while it reads a child's or a cache entry beside
    # it), attempt claims, provider slots, the reaper
    store = ensure_job_queue(PostgresStore(url, max_connections=2 * concurrency + 2))
    app = job_queue_app(store, connections=2 * concurrency + 2)  # claims, finishes, LISTEN
    register_turn(app, store)
    me = f"{socket.gethostname()}:{os.getpid()}"
    limiter = ProviderLimiter(store, limits, holder=me, heartbeat_s=heartbeat_s)
    register_attempt(app, store, limiter)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "update_heartbeat_interval": heartbeat_s,
        "stalled_worker_timeout": 3 * heartbeat_s,
        "shutdown_graceful_timeout": grace_s,
        # procrastinate clears its "new job" flag after a fetch that found nothing, so a
        # NOTIFY landing during that fetch is lost; a step's next job is deferred just as
        # its previous one ends, which hits that often: look again this soon when idle
        "fetch_job_polling_interval": FETCH_POLL_S,
        "install_signal_handlers": False,  # one handler below stops both
    }
    stop = asyncio.Event()
    try:
        async with app.open_async():
            loops = [
                asyncio.create_task(
                    app.run_worker_async(queues=[TURN_QUEUE], name=f"{me} turns", **options)
                ),
                asyncio.create_task(
                    app.run_worker_async(
                        queues=[QUEUE_PREFIX + name for name in queues],
                        name=f"{me} attempts",
                        **options,
                    )
                ),
            ]
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(_taken_over_quietly)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, _drain, loops)
            reaper = asyncio.create_task(reap_forever(app, store, heartbeat_s, stop))
            try:
                await asyncio.gather(*loops, return_exceptions=True)
            finally:
                stop.set()
                await reaper
    finally:
        store.close()


# procrastinate's refusal to finish a job that is no longer this worker's
TAKEN_OVER = 'Job was not found or not in "doing" or "todo" status'


def _taken_over_quietly(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A worker that froze (SIGSTOP, a long pause) and woke finds its job was handed to
    another worker meanwhile: procrastinate's task fails to mark it finished and asyncio
    would log a two-page traceback for what is expected (the other worker has it, and the
    turn refused the late answer). One line instead; anything else as asyncio would."""
    error = context.get("exception")
    cause = error.__cause__ if error is not None else None
    if cause is not None and TAKEN_OVER in str(cause):
        task = context.get("future")
        name = task.get_name().removeprefix("process ") if isinstance(task, asyncio.Task) else ""
        logging.getLogger("automatosx.worker").warning(
            "%s was taken over by another worker while this one was not responding; "
            "its late answer was refused",
            name or "a job",
        )
        return
    loop.default_exception_handler(context)


def _drain(loops: list[asyncio.Task[None]]) -> None:
    """Stop claiming; procrastinate lets running jobs go on for the grace period."""
    for task in loops:
        task.cancel()
