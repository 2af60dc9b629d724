"""Worker threads for the `python` provider's sync callables, with a cheap hand-off.

A sync callable must not run on the event loop: a slow one would stall pause/cancel polling,
lease renewal and every other step. `asyncio.to_thread` keeps it off the loop but costs a
thread-pool submit, a `concurrent.futures.Future` chained to an asyncio one and a context
copy: about 60 us per call here, a third of a no-op step. These threads take a job from one
queue and hand the result straight to the caller's loop future (about 30 us per call).

Behaviour matches the default executor the provider used before: at most
`min(32, cpus + 4)` callables run at once (more wait in the queue), a callable keeps running
after its step was cancelled or timed out (a thread cannot be killed), and a process waits at
exit for callables still running rather than cutting them off.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)

_Job = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]
]


class CallableThreads:
    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self._max_threads = max_threads
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._all_idle = threading.Condition(self._lock)

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`func(*args, **kwargs)` in a worker thread; its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()
        self._jobs.put((loop, future, context, lambda: func(*args, **kwargs)))
        if not self._idle.acquire(blocking=False):
            self._start_thread()
        return await future

    def _start_thread(self) -> None:
        with self._lock:
            if self._threads >= self._max_threads:
                return  # a running thread takes the job when it is free
            if self._threads == 0:
                atexit.register(self.wait_until_idle)
            self._threads += 1
        threading.Thread(target=self._work, name="ax-python-callable", daemon=True).start()

    def _work(self) -> None:
        while True:
            loop, future, context, call = self._jobs.get()
            with self._lock:
                self._busy += 1
            try:
                result: Any = context.run(call)
                error: BaseException | None = None
            except BaseException as exc:  # handed to the caller, which decides
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)
            del future, result, error, call
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    self._all_idle.notify_all()
            self._idle.release()

    def wait_until_idle(self) -> None:
        """Block until no callable is running (at interpreter exit)."""
        with self._lock:
            while self._busy:
                self._all_idle.wait()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the step was cancelled or timed out meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


CALLABLE_THREADS = CallableThreads()
