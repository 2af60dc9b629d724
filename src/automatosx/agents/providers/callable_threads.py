"""Worker threads for the `python` provider's sync callables, with a cheap hand-off.

A sync callable must not run on the event loop: a slow one would stall pause/cancel polling,
lease renewal and every other step. `asyncio.to_thread` keeps it off the loop, but in the
engine the round trip (thread-pool submit, a `concurrent.futures.Future` chained to an
asyncio one, the loop's self-pipe wake-up and the extra loop turns) cost more than the rest
of a no-op step together (0.14 ms of 0.26 ms in a 1,000-step chain).

Here a job goes to a persistent worker thread, and the loop thread then waits for it for at
most `QUICK_WAIT_S` (0.5 ms) with the GIL released: a callable that is done by then (most
glue code) hands its result straight back, with no wake-up of the loop. One that is not done
is awaited as usual: the worker settles the loop's future when it finishes, and the loop
runs everything else meanwhile. A callable that ran longer than `QUICK_WAIT_S` last time
(its own run time, measured in the worker, so a busy machine's slow thread wake-ups do not
count) is not waited for at all: the loop is never held for more than half a millisecond
per step start, and never for a slow callable; pause/cancel polling (every 100 ms) and
timers keep their pace.

What is left is the hand-off itself: on this 2-vCPU VM, waking a thread parked on the other
vCPU costs ~35 us, and a round trip needs two wake-ups (~0.06-0.08 ms; ~0.015 ms when both
threads share a CPU, which is why it is the wake-ups and not Python that cost). The benchmarks
measure it as a floor. Both sides stay in C while waiting (raw locks rather than
`threading.Event`/`Semaphore`, which are Python code around a Condition), and releasing the
waiting loop thread is the worker's last action before it blocks again, so the loop thread
never wakes to find the worker still holding the GIL. (Measured against the Event-based
version, interleaved: no difference beyond the noise; the chain of sync no-ops costs
0.28-0.31 ms per step either way, an async one 0.15.)

Running quick sync callables on the loop thread itself, as LangGraph and DBOS run sync nodes
and steps, was rejected: code that works in a thread breaks there (`asyncio.run` inside the
callable raises), and one unexpectedly slow call would freeze timers, pause/cancel and lease
renewal for as long as it runs.

Behaviour otherwise matches the default executor the provider used before: at most
`min(32, cpus + 4)` callables run at once (more wait in the queue), a callable keeps running
after its step was cancelled or timed out (a thread cannot be killed), and a process waits at
exit for callables still running or queued rather than cutting them off.
"""

from __future__ import annotations

import _thread
import asyncio
import atexit
import contextlib
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)
QUICK_WAIT_S = 0.0005


class _Job:
    __slots__ = (
        "call", "context", "error", "finished", "future", "lock", "loop", "result", "seconds",
        "signal",
    )  # fmt: skip

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.context = contextvars.copy_context()
        # Held until the worker is done: `acquire(timeout=...)` is the quick wait. A raw lock,
        # not a `threading.Event`, so both sides stay in C (an Event is a Python Condition).
        self.signal = _thread.allocate_lock()
        self.signal.acquire()
        self.finished = False
        self.lock = _thread.allocate_lock()
        self.result: Any = None
        self.error: BaseException | None = None
        self.seconds: float | None = None  # how long the callable ran, once it has
        # Set (under `lock`) once the caller stopped waiting synchronously.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[Any] | None = None


class CallableThreads:
    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self._max_threads = max_threads
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a job (or about to)
        self._threads = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._all_idle = threading.Condition(self._lock)
        self._slow: set[int] = set()  # ids of callables slower than QUICK_WAIT_S last time

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`func(*args, **kwargs)` in a worker thread; its result or exception."""
        job = _Job(lambda: func(*args, **kwargs))
        with self._lock:
            self._busy += 1
            start = not self._idle
            if not start:
                self._idle -= 1
        self._jobs.put(job)
        if start:
            self._start_thread()
        quick = id(func) not in self._slow and job.signal.acquire(True, QUICK_WAIT_S)
        if not quick:
            with job.lock:
                if not job.finished:
                    job.loop = asyncio.get_running_loop()
                    job.future = job.loop.create_future()
            if job.future is not None:
                try:
                    return await job.future
                finally:
                    self._note_duration(func, job)
        self._note_duration(func, job)
        if job.error is not None:
            raise job.error
        return job.result

    def _note_duration(self, func: Callable[..., Any], job: _Job) -> None:
        """Remember whether the callable itself (not the wait for a thread, which a busy
        machine can stretch) took longer than the quick wait."""
        if job.seconds is None or job.seconds > QUICK_WAIT_S:  # None: still running
            self._slow.add(id(func))
        else:
            self._slow.discard(id(func))

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
            job = self._jobs.get()
            started = time.perf_counter()
            try:
                job.result = job.context.run(job.call)
            except BaseException as exc:  # handed to the caller, which decides
                job.error = exc
            job.seconds = time.perf_counter() - started
            with self._lock:
                self._busy -= 1
                self._idle += 1
                if self._busy == 0:
                    self._all_idle.notify_all()
            # Handing the result over is the last thing before blocking on the queue again
            # (which releases the GIL): a loop thread woken by `signal` then never has to
            # wait for this thread's GIL, a second cross-CPU wake-up.
            with job.lock:
                job.finished = True
                loop, future = job.loop, job.future
            if loop is not None and future is not None:
                with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                    loop.call_soon_threadsafe(_settle, future, job)
            job.signal.release()
            del job, loop, future

    def wait_until_idle(self) -> None:
        """Block until no callable is running (at interpreter exit)."""
        with self._lock:
            while self._busy:
                self._all_idle.wait()


def _settle(future: asyncio.Future[Any], job: _Job) -> None:
    if future.done():  # the step was cancelled or timed out meanwhile
        return
    if job.error is None:
        future.set_result(job.result)
    else:
        future.set_exception(job.error)


CALLABLE_THREADS = CallableThreads()
