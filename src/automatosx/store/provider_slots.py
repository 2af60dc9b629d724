"""Named SQL for per-provider concurrency across workers (`workflow_provider_slots`,
migration 014; PostgreSQL): a counting semaphore of N slot rows per limited provider.

`take_provider_slot` creates the provider's rows up to its limit (idempotent), then takes
one that is free (no holder, or its holder's lease expired) with `FOR UPDATE SKIP LOCKED`,
so concurrent workers never take the same slot and never wait on each other's locks.
The holder renews the lease while its call runs (`renew_provider_slot`) and frees it at the
end (`free_provider_slot`); a dead worker's slot frees itself when its lease expires.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

CREATE_SLOTS = (
    "INSERT INTO workflow_provider_slots (provider, slot) "
    "SELECT ?, s FROM generate_series(0, ? - 1) AS s ON CONFLICT (provider, slot) DO NOTHING"
)
TAKE = (
    "UPDATE workflow_provider_slots SET holder = ?, expires_at = ? WHERE (provider, slot) = ("
    "SELECT provider, slot FROM workflow_provider_slots WHERE provider = ? AND slot < ? "
    "AND (holder IS NULL OR expires_at < ?) ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING slot"
)
RENEW = (
    "UPDATE workflow_provider_slots SET expires_at = ? "
    "WHERE provider = ? AND slot = ? AND holder = ?"
)
FREE = (
    "UPDATE workflow_provider_slots SET holder = NULL, expires_at = NULL "
    "WHERE provider = ? AND slot = ? AND holder = ?"
)


class _Transactional(Protocol):
    def _transaction(self) -> AbstractContextManager[Connection]: ...


class ProviderSlotQueries:
    """Mixed into `SqlStore`: the provider-slot methods of the `Store` protocol."""

    def take_provider_slot(
        self: _Transactional, provider: str, limit: int, holder: str, *, now: float, until: float
    ) -> int | None:
        """A free slot of `provider` (of `limit`), now `holder`'s until `until`; None if
        all are taken."""
        with self._transaction() as db:
            db.execute(CREATE_SLOTS, (provider, limit))
            row = db.execute(TAKE, (holder, until, provider, limit, now)).fetchone()
        return None if row is None else int(row[0])

    def renew_provider_slot(
        self: _Transactional, provider: str, slot: int, holder: str, *, until: float
    ) -> bool:
        with self._transaction() as db:
            return db.execute(RENEW, (until, provider, slot, holder)).rowcount == 1

    def free_provider_slot(self: _Transactional, provider: str, slot: int, holder: str) -> None:
        with self._transaction() as db:
            db.execute(FREE, (provider, slot, holder))
