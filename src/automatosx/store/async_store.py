"""The store as the engine uses it: awaitable, first in line for the GIL, and patient with a
database that drops its connections for a moment.

- Calls run inline on the engine's thread (a SQLite commit costs ~0.1 ms; a hop to a thread
  would cost as much again), holding `automatosx.priority` so that HTTP calls on the I/O
  loop thread yield to them.
- A call that fails because the store could not be reached (`StoreUnavailableError`: a
  PostgreSQL restart, a dropped connection) is retried with backoff for as long as the
  runner's lease is valid; the run carries on once the database is back. A write that may or
  may not have committed when its connection dropped is sent again with the same sequence
  number, which the store applies at most once, and the fence is checked again with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from automatosx import priority
from automatosx.errors import StoreUnavailableError
from automatosx.store.base import Store
from automatosx.store.records import (
    ApprovalRecord,
    CacheEntry,
    ControlRequest,
    ExecutionRecord,
    Lease,
    WriteOp,
)

T = TypeVar("T")
FIRST_RETRY_S = 0.05
MAX_RETRY_S = 1.0


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._sequenced = store.connections_can_drop
        self._seq = 0

    async def write(self, lease: Lease, ops: Sequence[WriteOp]) -> None:
        """Apply `ops` in one fenced transaction (see `Store.write`)."""
        seq: int | None = None
        if self._sequenced:
            self._seq += 1
            seq = self._seq
        store = self.store
        try:
            if priority.gate.active:
                with priority.gate:
                    store.write(lease, ops, seq=seq)
            else:
                store.write(lease, ops, seq=seq)
            return
        except StoreUnavailableError:
            pass
        await self._retry(lambda: store.write(lease, ops, seq=seq), until=lease.expires_at)

    async def renew_lease(
        self, lease: Lease, lease_seconds: float
    ) -> tuple[Lease, ControlRequest | None]:
        return await self._call(
            lambda: self.store.renew_lease(lease, lease_seconds), until=lease.expires_at
        )

    async def get_execution(self, execution_id: str, *, until: float) -> ExecutionRecord:
        return await self._call(lambda: self.store.get_execution(execution_id), until=until)

    async def control_request(self, execution_id: str, *, until: float) -> ControlRequest | None:
        # every turn that starts a step asks
        return await self._often(self.store.control_request, execution_id, until=until)

    async def waiting_approvals(
        self, execution_id: str, *, decided_only: bool, until: float
    ) -> list[ApprovalRecord]:
        return await self._call(
            lambda: self.store.waiting_approvals(execution_id, decided_only=decided_only),
            until=until,
        )

    async def expire_approval(
        self, execution_id: str, step_key: str, *, now: float, until: float
    ) -> bool:
        return await self._call(
            lambda: self.store.expire_approval(execution_id, step_key, now=now), until=until
        )

    # The result cache's reads and leases (runtime/cache.py): `until` is the runner's lease.
    async def cache_entry(self, key: str, *, until: float) -> CacheEntry | None:
        # every cached step asks once
        return await self._often(self.store.cache_entry, key, until=until)

    async def take_cache_lease(
        self, key: str, owner: str, seconds: float, *, now: float, until: float
    ) -> bool:
        return await self._call(
            lambda: self.store.take_cache_lease(key, owner, seconds, now), until=until
        )

    async def renew_cache_lease(
        self, key: str, owner: str, seconds: float, *, now: float, until: float
    ) -> bool:
        return await self._call(
            lambda: self.store.renew_cache_lease(key, owner, seconds, now), until=until
        )

    async def release_cache_lease(self, key: str, owner: str, *, until: float) -> None:
        await self._call(lambda: self.store.release_cache_lease(key, owner), until=until)

    async def release_lease(self, lease: Lease) -> None:
        await self._call(lambda: self.store.release_lease(lease), until=lease.expires_at)

    async def _call(self, call: Callable[[], T], *, until: float) -> T:
        try:
            with priority.hold():
                return call()
        except StoreUnavailableError:
            pass
        return await self._retry(call, until=until)

    async def _often(self, call: Callable[[str], T], arg: str, *, until: float) -> T:
        """`call(arg)` as `_call` makes it, for a read made on every turn or every step: no
        closure and no `priority.hold()` on the happy path, only when it has to retry."""
        try:
            if not priority.gate.active:
                return call(arg)
            with priority.gate:
                return call(arg)
        except StoreUnavailableError:
            pass
        return await self._retry(lambda: call(arg), until=until)

    async def _retry(self, call: Callable[[], T], *, until: float) -> T:
        """Retry `call` after a lost connection until it succeeds or `until` (the lease's
        end: past it another runner may own the execution) leaves no time to wait."""
        delay = FIRST_RETRY_S
        while True:
            if time.time() + delay >= until:
                with priority.hold():
                    return call()  # one last try; its error is the caller's
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            try:
                with priority.hold():
                    return call()
            except StoreUnavailableError:
                continue
