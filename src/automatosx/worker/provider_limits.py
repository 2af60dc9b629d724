"""Per-provider concurrency across all workers (`AX_PROVIDER_LIMITS`): before an attempt
calls a limited provider, its worker takes one of the provider's slots in the store, holds
it for the call (renewed on every heartbeat, so a dead worker's slot expires after three)
and frees it after. While every slot is taken the attempt waits, asking again with a
growing pause (up to half a second), so 8 workers never open 8 times the calls an API
allows. A provider's limit applies to the attempts on its queue (an agent's first
provider); an agent's fallback providers are called within that slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automatosx.store.base import Store

WAIT_S = (0.02, 0.5)  # first and longest pause between two asks for a slot


class ProviderLimiter:
    def __init__(
        self, store: Store, limits: Mapping[str, int], *, holder: str, heartbeat_s: float
    ) -> None:
        self.store = store
        self.limits = dict(limits)
        self.holder = holder
        self.heartbeat_s = heartbeat_s

    @contextlib.asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        """Held for the body when `provider` is limited; nothing to hold otherwise."""
        limit = self.limits.get(provider)
        if limit is None:
            yield
            return
        taken = await self._take(provider, limit)
        renewing = asyncio.create_task(self._renew(provider, taken))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await asyncio.shield(
                asyncio.to_thread(self.store.free_provider_slot, provider, taken, self.holder)
            )

    async def _take(self, provider: str, limit: int) -> int:
        pause = WAIT_S[0]
        while True:
            now = time.time()
            taken = await asyncio.to_thread(
                self.store.take_provider_slot,
                provider,
                limit,
                self.holder,
                now=now,
                until=now + 3 * self.heartbeat_s,
            )
            if taken is not None:
                return taken
            await asyncio.sleep(pause)
            pause = min(WAIT_S[1], pause * 2)

    async def _renew(self, provider: str, slot: int) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            until = time.time() + 3 * self.heartbeat_s
            await asyncio.to_thread(
                self.store.renew_provider_slot, provider, slot, self.holder, until=until
            )
