"""A process-wide event loop on its own thread for the HTTP providers' calls.

An HTTP call through httpx costs ~1-2 ms of Python work (request building, connection-pool
bookkeeping, parsing), and the pool's bookkeeping grows with the number of open connections.
With 500 concurrent `openai` steps on the engine's loop, responses that arrive together are
all processed in one loop turn: the loop stalled for hundreds of milliseconds, and with it
timers, pause/cancel polling and commits. On this thread the same work only makes the
engine's loop wait for the GIL, which Python hands over every 5 ms.

That wait was still the engine's worst stall (a GIL convoy around its commits): the
coroutines run here therefore wait at each resumption while the store facade holds
`automatosx.priority` (see there; measured: the longest commit of a 500-call burst went
from 36 to 2 ms).

`run_on_io_loop(coro)` runs a coroutine there and waits for it. Cancelling the caller (step
timeout, cancel, failure elsewhere) cancels it there too and waits until it has finished
cleaning up (closing its stream), so a cancelled step leaves nothing running, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from automatosx import priority

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class _Yielding(Coroutine[Any, Any, T]):
    """A coroutine that, before each resumption, lets a store call in progress finish."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro

    def send(self, value: Any) -> Any:
        priority.wait()
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        priority.wait()
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.send(None)


def io_loop() -> asyncio.AbstractEventLoop:
    """The I/O loop, started (on a daemon thread) on first use."""
    global _loop
    with _lock:
        if _loop is None:
            priority.activate()
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ax-io-loop", daemon=True).start()
            _loop = loop
        return _loop


async def run_on_io_loop(coro: Coroutine[Any, Any, T]) -> T:
    """`await coro`, run on the I/O loop; cancellation is passed on and waited for."""
    caller = asyncio.get_running_loop()
    target = io_loop()
    done: asyncio.Future[T] = caller.create_future()
    started: list[asyncio.Task[T]] = []

    def on_done(task: asyncio.Task[T]) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop has closed
            caller.call_soon_threadsafe(_copy_outcome, task, done)

    def start() -> None:
        task = target.create_task(_Yielding(coro))
        started.append(task)
        task.add_done_callback(on_done)

    target.call_soon_threadsafe(start)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        # `start` was queued first on the same loop, so the task exists when this runs.
        target.call_soon_threadsafe(lambda: started[0].cancel())
        with contextlib.suppress(BaseException):
            await done
        raise


def _copy_outcome(task: asyncio.Task[T], done: asyncio.Future[T]) -> None:
    if done.done():
        return
    if task.cancelled():
        done.cancel()
    elif (error := task.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(task.result())
