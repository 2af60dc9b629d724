"""Wakes the open event streams when the audit log grows.

One task asks the store for its newest event ID every `POLL_SECONDS` (on an index: the
primary key's end) while at least one stream is open, and wakes every stream when it moved;
each stream then reads only its own execution's new events. So five open streams cost one
tiny query per tick, not five, and no stream costs anything while nothing happens. The
feed works the same on SQLite and PostgreSQL (a writer in another process commits to the
same tables), so one code path serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automatosx.store.base import Store

POLL_SECONDS = 0.2


class EventFeed:
    def __init__(self, store: Store, poll_seconds: float = POLL_SECONDS) -> None:
        self._store = store
        self._poll = poll_seconds
        self._listeners = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._latest = 0

    @property
    def latest(self) -> int:
        """The newest event ID seen: a stream notes it before reading, and waits from it,
        so an event that lands between its read and its wait is not missed."""
        return self._latest

    async def wait(self, seen: int, timeout: float) -> bool:
        """Until the newest event ID is no longer `seen` (True) or `timeout` passes."""
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="ax-ui-event-feed")
        try:
            async with self._changed:
                return await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._latest != seen), timeout
                )
        except TimeoutError:
            return False
        finally:
            self._listeners -= 1

    async def _watch(self) -> None:
        while self._listeners > 0:
            latest = await asyncio.to_thread(self._store.latest_event_id)
            if latest != self._latest:
                self._latest = latest
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self._poll)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
