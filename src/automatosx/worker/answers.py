"""Where a worker's drivers wait for the answers of the attempts they dispatched: one
board per worker process.

An answer is recorded with a NOTIFY on `ax_dispatch_answered` (payload: the dispatch ID)
in the transaction that records it; the board LISTENs on its own connection and hands the
outcome to the driver waiting for that ID, a millisecond or two after the commit. Should a
notification be missed (the connection was being re-made), the board also asks the store
for every answer still awaited, once a second, so an attempt is never waited for forever.
Notifications of other schemas' workers sharing the database name IDs nobody here awaits:
they are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg

from automatosx.store.dispatch import ANSWERED_CHANNEL

if TYPE_CHECKING:
    from automatosx.store.postgres import PostgresStore

log = logging.getLogger(__name__)

FALLBACK_POLL_S = 1.0
RECONNECT_S = 0.5


class AnswerBoard:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._poll())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def expect(self, dispatch_id: str) -> asyncio.Future[dict[str, Any]]:
        """The future outcome of this dispatch (registered before it is dispatched, so no
        answer can come first); `forget` it when no longer awaited."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[dispatch_id] = future
        return future

    def forget(self, dispatch_id: str) -> None:
        self._waiting.pop(dispatch_id, None)

    async def _collect(self, ids: list[str]) -> None:
        answers = await asyncio.to_thread(self.store.dispatch_answers, ids)
        for dispatch_id, data in answers.items():
            future = self._waiting.get(dispatch_id)
            if future is not None and not future.done():
                future.set_result(data)

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.store.conninfo, autocommit=True, connect_timeout=10
                )
                async with conn:
                    await conn.execute(f"LISTEN {ANSWERED_CHANNEL}")
                    await self._collect(list(self._waiting))  # answered while not listening
                    async for note in conn.notifies():
                        if note.payload in self._waiting:
                            await self._collect([note.payload])
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("listening for answers failed (%s); again in %s s", exc, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(FALLBACK_POLL_S)
            if self._waiting:
                with contextlib.suppress(Exception):  # the database is away: next second
                    await self._collect(list(self._waiting))
