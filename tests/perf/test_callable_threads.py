"""The `python` provider's worker threads: results, errors, overlap, cancellation, limits."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from automatosx.agents.providers.callable_threads import CallableThreads
from automatosx.errors import StepError


def test_quick_and_slow_callables_return_their_results_off_the_loop_thread() -> None:
    threads = CallableThreads(max_threads=4)
    loop_thread = threading.get_ident()

    def where(value: int, *, delay: float = 0.0) -> tuple[int, int]:
        time.sleep(delay)
        return value, threading.get_ident()

    async def main() -> list[tuple[int, int]]:
        quick = await threads.run(where, 1)
        slow = await threads.run(where, 2, delay=0.05)
        after_slow = await threads.run(where, 3)  # no quick wait for a slow callable now
        return [quick, slow, after_slow]

    results = asyncio.run(main())
    assert [value for value, _ in results] == [1, 2, 3]
    assert all(thread != loop_thread for _, thread in results)


def test_exceptions_reach_the_caller_on_both_paths() -> None:
    threads = CallableThreads(max_threads=2)

    def fail(delay: float) -> None:
        time.sleep(delay)
        raise StepError("rate_limit", f"after {delay}")

    async def main() -> list[str]:
        messages = []
        for delay in (0.0, 0.05):
            with pytest.raises(StepError) as caught:
                await threads.run(fail, delay)
            messages.append(f"{caught.value.kind} {caught.value.message}")
        return messages

    assert asyncio.run(main()) == ["rate_limit after 0.0", "rate_limit after 0.05"]


def test_slow_callables_overlap_and_leave_the_loop_free() -> None:
    threads = CallableThreads(max_threads=4)
    spans: list[tuple[float, float]] = []
    ticks: list[float] = []

    def work() -> None:
        start = time.monotonic()
        time.sleep(0.2)
        spans.append((start, time.monotonic()))

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> None:
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        await asyncio.gather(*(threads.run(work) for _ in range(3)))
        stop.set()
        await tick_task

    asyncio.run(main())
    assert len(spans) == 3
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end  # all three ran at the same time
    assert len(ticks) >= 5  # the loop kept turning while they ran


def test_at_most_max_threads_run_at_once() -> None:
    threads = CallableThreads(max_threads=2)
    running = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with guard:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(threads.run(work) for _ in range(6)))

    asyncio.run(main())
    assert peak == 2


def test_a_cancelled_call_returns_at_once_and_the_callable_runs_to_its_end() -> None:
    threads = CallableThreads(max_threads=2)
    finished = threading.Event()

    def work() -> str:
        time.sleep(0.2)
        finished.set()
        return "done"

    async def main() -> bool:
        task = asyncio.create_task(threads.run(work))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished.is_set()

    assert asyncio.run(main()) is False  # cancelled before the callable ended
    threads.wait_until_idle()
    assert finished.is_set()


def test_waiting_until_idle_includes_queued_callables() -> None:
    threads = CallableThreads(max_threads=1)
    done: list[int] = []

    def work(index: int) -> None:
        time.sleep(0.05)
        done.append(index)

    async def main() -> None:
        tasks = [asyncio.create_task(threads.run(work, i)) for i in range(3)]
        await asyncio.sleep(0.01)  # the first runs, two wait in the queue
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    assert len(done) < 3
    threads.wait_until_idle()  # what the process does at exit
    assert done == [0, 1, 2]
