"""The result cache's entries as `ax cache list --format json` prints them (and the
dashboard will serve them): one document per entry, newest first."""

from __future__ import annotations

from typing import Any

from automatosx.store.records import CacheEntry
from automatosx.views.timestamps import iso


def cache_entry_document(entry: CacheEntry, now: float) -> dict[str, Any]:
    """One entry: its key, the step and execution whose call produced it, who served it
    and what it cost, its times (`expiresAt` null: it never expires) and its hits."""
    return {
        "key": entry.key,
        "executionId": entry.execution_id,
        "stepKey": entry.step_key,
        "agent": entry.agent,
        "provider": entry.provider,
        "model": entry.model,
        "tokensIn": entry.tokens_in,
        "tokensOut": entry.tokens_out,
        "costUsd": entry.cost_usd,
        "createdAt": iso(entry.created_at),
        "expiresAt": iso(entry.expires_at),
        "expired": not entry.is_live(now),
        "hits": entry.hits,
        "lastHitAt": iso(entry.last_hit_at),
    }
