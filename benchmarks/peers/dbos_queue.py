"""The workers benchmark's shapes on DBOS queues, on the same PostgreSQL (its system
database in a database of its own).

    python dbos_queue.py worker URL EXECUTOR_ID CONCURRENCY POLLING_S
        a DBOS process dequeuing the `bench` queue (worker_concurrency CONCURRENCY, polling
        every POLLING_S: DBOS's default is 1 s), until killed; prints "ready" once launched
    python dbos_queue.py enqueue URL WORKFLOW COUNT
        enqueues COUNT workflows (`io_flow`: two 0.1 s async steps; `noop_flow`: one no-op
        step) through DBOSClient, waits for every result, prints {"seconds"} as JSON
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time

from dbos import DBOS, DBOSClient


@DBOS.step()
async def asleep(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@DBOS.step()
async def anoop() -> str:
    return "ok"


@DBOS.workflow()
async def io_flow() -> None:
    await asleep(0.1)
    await asleep(0.1)


@DBOS.workflow()
async def noop_flow() -> None:
    await anoop()


def worker(url: str, executor_id: str, concurrency: int, polling_s: float) -> None:
    DBOS(config={"name": "ax-bench-queue", "system_database_url": url, "executor_id": executor_id})
    DBOS.launch()
    DBOS.register_queue("bench", worker_concurrency=concurrency, polling_interval_sec=polling_s)
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    DBOS.destroy()


def enqueue(url: str, workflow: str, count: int) -> None:
    client = DBOSClient(system_database_url=url)
    try:
        start = time.perf_counter()
        handles = [
            client.enqueue({"workflow_name": workflow, "queue_name": "bench"}) for _ in range(count)
        ]
        for handle in handles:
            handle.get_result()
        print(json.dumps({"seconds": time.perf_counter() - start}))
    finally:
        client.destroy()


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        enqueue(sys.argv[2], sys.argv[3], int(sys.argv[4]))
