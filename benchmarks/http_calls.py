"""500 concurrent `openai`-provider steps, run in-process so event-loop lag can be sampled.

`python http_calls.py WORKFLOW.json DB` runs the workflow exactly as `ax workflow run` does
(load, prepare, open the store, start, drive on a fresh event loop) while a ticker task on
the same loop asks to wake every millisecond and records how late it woke: that lateness is
the event-loop lag every step, timer and pause/cancel poll would see. Prints one JSON line:
`{"state", "durationMs", "steps", "lagMaxMs", "lagP99Ms", "peakRssMb"}`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path

TICK_S = 0.001


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + TICK_S
        await asyncio.sleep(TICK_S)
        lags.append(max(0.0, loop.time() - due))


def main() -> None:
    from automatosx.agents.providers.http_api import close_shared_client
    from automatosx.definition.loader import load_workflow
    from automatosx.runtime.control import start_execution
    from automatosx.runtime.preparation import prepare_workflow
    from automatosx.store import open_store

    definition = load_workflow(Path(sys.argv[1]))
    prepared = prepare_workflow(definition)
    store = open_store(sys.argv[2])
    runner = start_execution(store, prepared, context={})
    lags: list[float] = []

    async def drive() -> str:
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(lags, stop))
        try:
            outcome = await runner.run()
        finally:
            stop.set()
            await ticker
            await close_shared_client()
        return outcome.state

    start = time.perf_counter()
    state = asyncio.run(drive())
    duration_ms = (time.perf_counter() - start) * 1000
    store.close()
    lags.sort()
    print(
        json.dumps(
            {
                "state": state,
                "durationMs": duration_ms,
                "steps": len(definition.steps),
                "lagMaxMs": lags[-1] * 1000 if lags else 0.0,
                "lagP99Ms": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
