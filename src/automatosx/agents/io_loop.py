"""A process-wide event loop on its own thread for the HTTP providers' calls.

An HTTP call through httpx costs ~1-2 ms of Python work (request building, connection-pool
bookkeeping, parsing), and the pool's bookkeeping grows with the number of open connections.
With 500 concurrent `openai` steps on the engine's loop, responses that arrive together are
all processed in one loop turn: the loop stalled for hundreds of milliseconds, and with it
timers, pause/cancel polling and commits. On this thread the same work only makes the
engine's loop wait for the GIL, which Python hands over every 5 ms.

That wait was still the engine's worst stall: every SQLite statement releases the GIL, and
taking it back from a busy I/O thread can take a whole switch interval, so a commit of two
operations took 36 ms in the middle of a burst of answers (a GIL convoy). The engine
therefore holds `engine_priority()` around its store calls, and calls on the I/O loop pause
at their next resumption while it is held (blocked on a lock, GIL released): the engine gets
the GIL back after at most one step of one call. A hold pauses them for `MAX_PAUSE_S` at
most, so an engine waiting for a busy database never stalls the calls with it. With 500
concurrent calls the longest commit in a run went from 36 to 2 ms, and the loop lag's
maximum (median of 8 interleaved runs, with the engine launching 16 attempts per slice
instead of 64) from 33 to 28 ms.

`run_on_io_loop(coro)` runs a coroutine there and waits for it. Cancelling the caller (step
timeout, cancel, failure elsewhere) cancels it there too and waits until it has finished
cleaning up (closing its stream), so a cancelled step leaves nothing running, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


MAX_PAUSE_S = 0.02  # how long a hold may pause the I/O loop; a commit takes ~0.1-2 ms


class _EngineFirst:
    """While any engine thread is inside `engine_priority()`, I/O-loop calls pause at their
    next resumption (blocking on a lock, so the GIL is released), for at most `MAX_PAUSE_S`
    per hold: an engine still holding after that is waiting itself (for a SQLite lock held
    by another process, say) and does not need the GIL, so the calls go on meanwhile."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._busy = 0
        self._since = 0.0

    def __enter__(self) -> None:
        with self._cond:
            if not self._busy:
                self._since = time.monotonic()
            self._busy += 1

    def __exit__(self, *_: object) -> None:
        with self._cond:
            self._busy -= 1
            if not self._busy:
                self._cond.notify_all()

    def wait(self) -> None:
        if self._busy:
            with self._cond:
                while self._busy:
                    left = self._since + MAX_PAUSE_S - time.monotonic()
                    if left <= 0:
                        return
                    self._cond.wait(left)


_engine_first = _EngineFirst()


def engine_priority() -> contextlib.AbstractContextManager[None]:
    """Hold while the engine's loop thread does store I/O: calls on the I/O loop yield to it."""
    return _engine_first if _loop is not None else contextlib.nullcontext()


class _Yielding(Coroutine[Any, Any, T]):
    """A coroutine that, before each resumption, lets a busy engine finish first."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro

    def send(self, value: Any) -> Any:
        _engine_first.wait()
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        _engine_first.wait()
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
