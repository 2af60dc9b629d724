"""Coroutines run on the I/O loop thread: results, errors, cancellation with cleanup, and
the engine's priority over them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from automatosx.agents.io_loop import engine_priority, io_loop, run_on_io_loop
from automatosx.errors import StepError


async def _thread_id() -> int:
    await asyncio.sleep(0)
    return threading.get_ident()


def test_the_coroutine_runs_on_another_thread_and_its_result_comes_back() -> None:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await run_on_io_loop(_thread_id())

    caller, worker = asyncio.run(main())
    assert caller != worker
    assert io_loop().is_running()


def test_errors_come_back_as_they_were_raised() -> None:
    async def fail() -> None:
        await asyncio.sleep(0.01)
        raise StepError("rate_limit", "slow down", retry_after_s=2.0)

    async def main() -> None:
        await run_on_io_loop(fail())

    with pytest.raises(StepError) as caught:
        asyncio.run(main())
    assert (caught.value.kind, caught.value.retry_after_s) == ("rate_limit", 2.0)


def test_cancelling_the_caller_cancels_the_call_and_waits_for_its_cleanup() -> None:
    events: list[str] = []

    async def call() -> None:
        try:
            events.append("started")
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # closing a stream takes a moment
            events.append("cleaned up")
            raise

    async def main() -> None:
        task = asyncio.create_task(run_on_io_loop(call()))
        while "started" not in events:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events.append("caller saw the cancellation")

    asyncio.run(main())
    assert events == ["started", "cleaned up", "caller saw the cancellation"]


def test_a_step_timeout_around_the_call_still_becomes_a_timeout() -> None:
    async def main() -> None:
        async with asyncio.timeout(0.05):
            await run_on_io_loop(asyncio.sleep(30))

    with pytest.raises(TimeoutError):
        asyncio.run(main())


def test_calls_on_the_io_loop_pause_while_the_engine_holds_priority() -> None:
    """While the engine does store I/O, a call resumes only once it is done: the engine then
    gets the GIL back at once instead of after a switch interval per SQLite statement."""
    resumed: list[float] = []
    io_loop()  # engine_priority() is a no-op until the I/O loop exists

    async def call() -> None:
        for _ in range(5):
            await asyncio.sleep(0.01)
            resumed.append(time.monotonic())

    async def main() -> tuple[float, float]:
        task = asyncio.create_task(run_on_io_loop(call()))
        while not resumed:
            await asyncio.sleep(0.002)
        with engine_priority():
            held_at = time.monotonic()
            count = len(resumed)
            time.sleep(0.1)  # a long commit on the engine's thread
            assert len(resumed) == count  # no step of the call ran meanwhile
            released_at = time.monotonic()
        await task
        return held_at, released_at

    held_at, released_at = asyncio.run(main())
    assert len(resumed) == 5
    assert not [at for at in resumed if held_at + 0.02 < at < released_at]
