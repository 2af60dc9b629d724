"""Which ready steps may start now, given the slot limit and exclusive steps.

Ready steps wait in the order they became ready (topological order within a batch). Normal
steps start while a slot is free (`parallelism`). A `parallel: false` step runs alone: it is
a barrier in the queue, so once it reaches the head nothing new starts until everything
running has finished, then it runs with nothing beside it. First-come order keeps this
starvation-free without look-ahead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class SlotScheduler:
    def __init__(self, parallelism: int, exclusive: Iterable[str]) -> None:
        self.parallelism = parallelism
        self._exclusive = frozenset(exclusive)
        self._queue: deque[str] = deque()
        self.running: set[str] = set()  # holding a slot: attempt in flight or retry backoff
        self._exclusive_running = False

    def add_ready(self, keys: Iterable[str]) -> None:
        self._queue.extend(keys)

    def discard(self, keys: Iterable[str]) -> None:
        """Forget queued steps that will not run (skipped)."""
        dropped = set(keys)
        if dropped and self._queue:
            self._queue = deque(k for k in self._queue if k not in dropped)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def take_startable(self) -> list[str]:
        """Steps to start now; each now holds a slot until `release`."""
        started: list[str] = []
        queue = self._queue
        while queue and not self._exclusive_running:
            key = queue[0]
            if key in self._exclusive:
                if self.running:
                    break
                self._exclusive_running = True
            elif len(self.running) >= self.parallelism:
                break
            queue.popleft()
            self.running.add(key)
            started.append(key)
        return started

    def release(self, key: str) -> None:
        self.running.discard(key)
        if key in self._exclusive:
            self._exclusive_running = False
