"""Store I/O before HTTP work: a process-wide gate between the engine's thread and the I/O
loop thread the HTTP providers run on (`agents/io_loop.py`).

Every SQLite statement releases the GIL, and taking it back from a busy I/O thread can take
a whole switch interval (5 ms): a two-operation commit took 36 ms in the middle of a burst
of 500 HTTP answers (a GIL convoy). So the store facade holds the gate around its store
calls (`hold()`), and the I/O loop's coroutines wait at their next resumption while it is
held (`wait()`, blocked on a lock with the GIL released): the commit gets the GIL back after
at most one step of one call. A hold pauses them for `MAX_PAUSE_S` at most, so a commit
waiting for a busy database (a lock another process holds) never stalls the calls with it.

It sits at the bottom of the package so that neither side imports the other: the store
facade (runtime's view of the store) holds, the agents' I/O loop waits. Until an I/O loop
exists (`activate()`), holding costs nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time

MAX_PAUSE_S = 0.02  # how long a hold may pause the I/O loop; a commit takes ~0.1-2 ms


class _StoreFirst:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._busy = 0
        self._since = 0.0
        self.active = False

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


gate = _StoreFirst()  # hot paths may test `gate.active` and hold `gate` itself
_NOTHING = contextlib.nullcontext()


def activate() -> None:
    """Something now waits at the gate (the I/O loop started): holds start to count."""
    gate.active = True


def hold() -> contextlib.AbstractContextManager[None]:
    """Hold around store I/O on the engine's thread: the I/O loop's calls yield to it."""
    return gate if gate.active else _NOTHING


def wait() -> None:
    """On the I/O loop, before resuming a call: let a store call in progress finish first."""
    gate.wait()
