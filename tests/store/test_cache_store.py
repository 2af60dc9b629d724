"""The result cache's store queries, on SQLite and PostgreSQL: an entry stored with the
completion that produced it (fenced, in the same transaction), hits counted, the lease on a
key (exactly one of racing owners wins; an expired or released lease is taken over),
corrupt rows, and the upkeep of `ax cache clear | prune`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from automatosx.errors import LeaseLostError, NotFoundError
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.cache import CorruptCacheEntryError
from automatosx.store.records import CacheEntry, PutCacheEntry, RecordCacheHit
from tests.store import sample
from tests.store.steps import Steps

KEY = "a" * 64


def entry(key: str = KEY, **fields: object) -> CacheEntry:
    values: dict[str, object] = {
        "key": key, "output": {"answer": [1, 2]}, "provider": "openai", "model": "gpt-4o-mini",
        "agent": "writer", "tokens_in": 10, "tokens_out": 20, "cost_usd": 0.5,
        "execution_id": "e-1", "step_key": "parse", "created_at": time.time(),
    }  # fmt: skip
    values.update(fields)
    return CacheEntry(**values)  # type: ignore[arg-type]


def test_an_entry_is_stored_with_the_completion_and_read_back(store: Store) -> None:
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    now = time.time()
    store.write(lease, steps.start("parse", now))
    assert store.cache_entry(KEY) is None
    stored = entry(execution_id=execution.id, created_at=now, expires_at=now + 60)
    store.write(lease, [*steps.succeed("parse", now), PutCacheEntry(stored)])
    assert store.cache_entry(KEY) == stored
    assert store.get_execution(execution.id).id == execution.id
    (instance,) = [i for i in store.list_instances(execution.id) if i.key == "parse"]
    assert instance.state == "completed"  # the same transaction
    store.write(lease, [RecordCacheHit(KEY, now + 1), RecordCacheHit(KEY, now + 2)])
    hit = store.cache_entry(KEY)
    assert hit is not None and (hit.hits, hit.last_hit_at) == (2, pytest.approx(now + 2))
    # Overwritten (`--refresh-cache`, or after an expiry): a new entry, no hits.
    store.write(lease, [PutCacheEntry(entry(output="fresh", created_at=now + 3))])
    again = store.cache_entry(KEY)
    assert again is not None and (again.output, again.hits, again.expires_at) == ("fresh", 0, None)


def test_a_runner_that_lost_its_lease_stores_no_entry(store: Store) -> None:
    execution, stale = sample.execution(store, lease_seconds=1)
    store.acquire_lease(execution.id, sample.OTHER, 60, now=time.time() + 5)
    with pytest.raises(LeaseLostError):
        store.write(stale, [PutCacheEntry(entry())])
    assert store.cache_entry(KEY) is None


def test_one_owner_holds_a_key_until_it_stores_releases_or_expires(store: Store) -> None:
    now = time.time()
    assert store.take_cache_lease(KEY, "runner-a", 30, now)
    assert not store.take_cache_lease(KEY, "runner-b", 30, now + 1)
    assert store.take_cache_lease(KEY, "runner-a", 30, now + 1)  # its own: extended
    assert store.cache_entry(KEY) is None  # a lease is not an entry
    assert store.list_cache_entries() == []
    assert store.renew_cache_lease(KEY, "runner-a", 30, now + 20)
    assert not store.take_cache_lease(KEY, "runner-b", 30, now + 40)  # renewed: still live
    assert store.take_cache_lease(KEY, "runner-b", 30, now + 51)  # expired: taken over
    assert not store.renew_cache_lease(KEY, "runner-a", 30, now + 52)
    store.release_cache_lease(KEY, "runner-a")  # not its lease any more: nothing happens
    assert not store.take_cache_lease(KEY, "runner-a", 30, now + 52)
    store.release_cache_lease(KEY, "runner-b")
    assert store.take_cache_lease(KEY, "runner-a", 30, now + 53)
    # Storing the entry ends the lease: the next runner finds the entry, and may lease the
    # key (to refresh an expired entry) without waiting.
    _, lease = sample.execution(store)
    store.write(lease, [PutCacheEntry(entry())])
    assert store.take_cache_lease(KEY, "runner-c", 30, now + 54)
    store.release_cache_lease(KEY, "runner-c")  # the entry stays
    assert store.cache_entry(KEY) is not None


def test_of_racing_owners_exactly_one_gets_the_lease(store_url: str) -> None:
    won: list[str] = []

    def take(index: int, racer: Store) -> None:
        if racer.take_cache_lease(KEY, f"runner-{index}", 30, time.time()):
            won.append(f"runner-{index}")

    sample.race(store_url, 6, take)
    assert len(won) == 1, won


def test_clear_and_prune(store: Store) -> None:
    now = time.time()
    _, lease = sample.execution(store)
    fresh, old, expired = "b" * 64, "c" * 64, "d" * 64
    store.write(
        lease,
        [
            PutCacheEntry(entry(fresh, created_at=now)),
            PutCacheEntry(entry(old, created_at=now - 10 * 86400)),
            PutCacheEntry(entry(expired, created_at=now - 10, expires_at=now - 1)),
        ],
    )
    store.take_cache_lease("e" * 64, "dead-runner", 1, now - 5)  # a dead runner's lease
    assert [e.key for e in store.list_cache_entries()] == [fresh, expired, old]
    assert sorted(store.prune_cache(now=now)) == [expired, "e" * 64]
    assert store.prune_cache(now=now, older_than_seconds=7 * 86400) == [old]
    assert [e.key for e in store.list_cache_entries()] == [fresh]
    store.write(lease, [PutCacheEntry(entry(old))])
    with pytest.raises(NotFoundError, match="no cache entry"):
        store.delete_cache_entries([fresh[:10], "f" * 12])  # one unknown: none deleted
    assert len(store.list_cache_entries()) == 2
    assert store.delete_cache_entries([fresh[:10]]) == [fresh]  # a prefix
    assert store.delete_cache_entries(None) == [old]
    assert store.list_cache_entries() == []


def test_a_corrupt_row_is_named_with_how_to_remove_it(tmp_path: Path) -> None:
    """SQLite only: PostgreSQL's column types refuse a time that is not a number."""
    store = open_store(str(tmp_path / "ax.db"))
    try:
        store.take_cache_lease(KEY, "runner-a", 30, time.time())  # a row, no entry yet
        db = store._conn  # type: ignore[attr-defined]
        db.execute(
            "UPDATE workflow_cache SET output = '1', created_at = 'yesterday' WHERE key = ?",
            (KEY,),
        )
        db.commit()
        with pytest.raises(CorruptCacheEntryError, match=f"ax cache clear {KEY}"):
            store.list_cache_entries()
        with pytest.raises(CorruptCacheEntryError, match="not a number"):
            store.cache_entry(KEY)
        assert store.delete_cache_entries([KEY]) == [KEY]
        assert store.list_cache_entries() == []
    finally:
        store.close()
