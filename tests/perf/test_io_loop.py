"""Coroutines run on the I/O loop thread: results, errors, cancellation with cleanup, and
the engine's priority over them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from automatosx import priority
from automatosx.agents.io_loop import io_loop, run_on_io_loop
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


def _resumptions_while_held(hold_s: float) -> tuple[list[float], float, float]:
    """Runs a call of 10 ms steps on the I/O loop and holds engine priority for `hold_s`
    on this thread meanwhile; returns when each step resumed, and the hold's start and end."""
    resumed: list[float] = []
    io_loop()  # priority.hold() is a no-op until the I/O loop exists

    async def call() -> None:
        for _ in range(8):
            await asyncio.sleep(0.01)
            resumed.append(time.monotonic())

    async def main() -> tuple[float, float]:
        task = asyncio.create_task(run_on_io_loop(call()))
        while not resumed:
            await asyncio.sleep(0.002)
        with priority.hold():
            held_at = time.monotonic()
            time.sleep(hold_s)  # the engine's thread busy with store I/O
            released_at = time.monotonic()
        await task
        return held_at, released_at

    held_at, released_at = asyncio.run(main())
    assert len(resumed) == 8
    return resumed, held_at, released_at


def test_calls_on_the_io_loop_pause_while_the_engine_holds_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the engine does store I/O, a call resumes only once it is done: the engine then
    gets the GIL back at once instead of after a switch interval per SQLite statement."""
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 10.0)
    resumed, held_at, released_at = _resumptions_while_held(0.1)
    assert not [at for at in resumed if held_at + 0.02 < at < released_at]


def test_a_long_hold_pauses_the_calls_only_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine holding priority for long is itself waiting (a SQLite lock held by another
    process): after MAX_PAUSE_S the calls go on instead of stalling with it."""
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 0.05)
    resumed, held_at, released_at = _resumptions_while_held(1.0)
    # (a step already past the gate when the hold began may land just after it)
    during = [at for at in resumed if held_at + 0.02 < at < released_at]
    assert during  # the call went on during the hold
    assert min(during) >= held_at + 0.04  # but only after the pause
