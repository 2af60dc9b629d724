"""The store's side of the result cache (`workflow_cache`): entries, leases on keys, upkeep.

An entry is written only by `PutCacheEntry`, inside the fenced transaction that completes
the step which produced it, so a reader never sees an answer whose step did not complete.
Everything else here is one statement on one row, outside any execution's lease:

- **lease on a key**: a runner about to call a provider for a key it missed takes the key's
  lease, an upsert that changes the row only while no other owner holds a live lease
  (`... ON CONFLICT DO UPDATE ... WHERE`: SQLite runs it under the write lock, PostgreSQL
  re-checks the WHERE on the row it waited for). Of two racing runners exactly one wins;
  the other waits for the answer (`runtime.cache`). A lease held by a dead runner simply
  expires. The row a lease creates has no output (SQL NULL, never JSON `null`): it is not
  an entry, and no reader lists it.
- **hits**: `RecordCacheHit` counts them, in the write that completes the answered step.
- A PostgreSQL transaction that completes several cached steps writes their rows in key
  order (`apply_cache_ops`), so two such transactions can never wait for each other.

A row that cannot be read back (its output is not JSON, a time is not a number: a file
edited by hand, a disk fault) is `CorruptCacheEntryError`: the commands say so and how to
remove it; a run treats it as a miss and overwrites it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from automatosx.errors import AxError, NotFoundError
from automatosx.store.codec import ColumnCodec, load_json
from automatosx.store.records import CacheEntry, PutCacheEntry, RecordCacheHit

if TYPE_CHECKING:
    from automatosx.store.write_ops import Connection

CACHE_COLUMNS = (
    "key, output, provider, model, agent, tokens_in, tokens_out, cost_usd, execution_id, "
    "step_key, created_at, expires_at, hits, last_hit_at"
)
_ENTRY = "output IS NOT NULL"  # a row with no output is a lease, not an entry
PUT_ENTRY = (
    f"INSERT INTO workflow_cache ({CACHE_COLUMNS}, lease_owner, lease_expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL) "
    "ON CONFLICT (key) DO UPDATE SET output = excluded.output, provider = excluded.provider, "
    "model = excluded.model, agent = excluded.agent, tokens_in = excluded.tokens_in, "
    "tokens_out = excluded.tokens_out, cost_usd = excluded.cost_usd, "
    "execution_id = excluded.execution_id, step_key = excluded.step_key, "
    "created_at = excluded.created_at, expires_at = excluded.expires_at, hits = 0, "
    "last_hit_at = NULL, lease_owner = NULL, lease_expires_at = NULL"
)
RECORD_HIT = "UPDATE workflow_cache SET hits = hits + 1, last_hit_at = ? WHERE key = ?"
TAKE_LEASE = (
    "INSERT INTO workflow_cache (key, created_at, lease_owner, lease_expires_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET lease_owner = excluded.lease_owner, "
    "lease_expires_at = excluded.lease_expires_at WHERE workflow_cache.lease_owner IS NULL "
    "OR workflow_cache.lease_owner = excluded.lease_owner "
    "OR workflow_cache.lease_expires_at IS NULL OR workflow_cache.lease_expires_at <= ?"
)
RENEW_LEASE = "UPDATE workflow_cache SET lease_expires_at = ? WHERE key = ? AND lease_owner = ?"
DROP_LEASE_ROW = f"DELETE FROM workflow_cache WHERE key = ? AND lease_owner = ? AND NOT {_ENTRY}"
CLEAR_LEASE = (
    "UPDATE workflow_cache SET lease_owner = NULL, lease_expires_at = NULL "
    "WHERE key = ? AND lease_owner = ?"
)


class CorruptCacheEntryError(AxError):
    """A cache row that cannot be read back; the message names how to remove it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(
            f"cache entry {key} is corrupt ({problem}); remove it with `ax cache clear {key}`"
        )


def entry_from_row(row: Any) -> CacheEntry:
    """The entry of a row of `CACHE_COLUMNS`; CorruptCacheEntryError if it cannot be."""
    key = str(row[0])
    try:
        output = load_json(row[1])
    except (TypeError, ValueError) as exc:
        raise CorruptCacheEntryError(key, f"its output is not JSON: {exc}") from None
    try:
        return CacheEntry(
            key=key,
            output=output,
            provider=_text(row[2]),
            model=_text(row[3]),
            agent=_text(row[4]),
            tokens_in=_int(row[5]),
            tokens_out=_int(row[6]),
            cost_usd=_float(row[7]),
            execution_id=_text(row[8]),
            step_key=_text(row[9]),
            created_at=_number(row[10]),
            expires_at=_float(row[11]),
            hits=_number_int(row[12]),
            last_hit_at=_float(row[13]),
        )
    except (TypeError, ValueError) as exc:
        raise CorruptCacheEntryError(key, str(exc)) from None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not text")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _number_int(value: Any) -> int:
    number = _number(value)
    if number != int(number):
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _float(value: Any) -> float | None:
    return None if value is None else _number(value)


def _int(value: Any) -> int | None:
    return None if value is None else _number_int(value)


def apply_cache_ops(
    db: Connection, ops: Sequence[PutCacheEntry | RecordCacheHit], codec: ColumnCodec
) -> None:
    """The cache rows a write changes, in key order (see the module docstring); of an
    entry stored and hit in the same write, the store comes first."""
    ordered = sorted(ops, key=lambda op: (_key_of(op), isinstance(op, RecordCacheHit)))
    for op in ordered:
        if isinstance(op, PutCacheEntry):
            e = op.entry
            db.execute(
                PUT_ENTRY,
                (
                    e.key, codec.json(e.output), e.provider, e.model, e.agent, e.tokens_in,
                    e.tokens_out, e.cost_usd, e.execution_id, e.step_key, e.created_at,
                    e.expires_at,
                ),
            )  # fmt: skip
        else:
            db.execute(RECORD_HIT, (op.at, op.key))


def _key_of(op: PutCacheEntry | RecordCacheHit) -> str:
    return op.entry.key if isinstance(op, PutCacheEntry) else op.key


class _Dialect(Protocol):
    """What the queries need from `SqlStore`."""

    def _transaction(self) -> AbstractContextManager[Connection]: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


class CacheQueries:
    """Mixed into `SqlStore`: the result cache's methods of the `Store` protocol."""

    def cache_entry(self: _Dialect, key: str) -> CacheEntry | None:
        """The entry stored under `key` (live or expired), None if there is none;
        CorruptCacheEntryError if its row cannot be read back. One primary-key read: the
        whole cost of a hit besides completing the step."""
        rows = self._fetch_all(
            f"SELECT {CACHE_COLUMNS} FROM workflow_cache WHERE key = ? AND {_ENTRY}", (key,)
        )
        return entry_from_row(rows[0]) if rows else None

    def take_cache_lease(self: _Dialect, key: str, owner: str, seconds: float, now: float) -> bool:
        """Take (or extend) the lease on `key` for `owner` unless another owner holds a
        live one; True if `owner` holds it now."""
        with self._transaction() as db:
            changed = db.execute(TAKE_LEASE, (key, now, owner, now + seconds, now)).rowcount
        return changed == 1

    def renew_cache_lease(self: _Dialect, key: str, owner: str, seconds: float, now: float) -> bool:
        """Extend `owner`'s lease on `key`; False if it no longer holds it."""
        with self._transaction() as db:
            changed = db.execute(RENEW_LEASE, (now + seconds, key, owner)).rowcount
        return changed == 1

    def release_cache_lease(self: _Dialect, key: str, owner: str) -> None:
        """Give the lease up (its call failed, or was cancelled): a waiting runner takes
        it at once rather than at its expiry. A no-op if `owner` no longer holds it."""
        with self._transaction() as db:
            if db.execute(DROP_LEASE_ROW, (key, owner)).rowcount == 0:
                db.execute(CLEAR_LEASE, (key, owner))

    def list_cache_entries(self: _Dialect) -> list[CacheEntry]:
        """Every entry, newest first; CorruptCacheEntryError names the first unreadable."""
        rows = self._fetch_all(
            f"SELECT {CACHE_COLUMNS} FROM workflow_cache WHERE {_ENTRY} "
            "ORDER BY created_at DESC, key"
        )
        return [entry_from_row(row) for row in rows]

    def delete_cache_entries(self: _Dialect, keys: Sequence[str] | None = None) -> list[str]:
        """Delete the entries with these keys (each a whole key or a unique prefix of at
        least 8 characters; NotFoundError names the first that matches none, and nothing
        is deleted), or every entry and lease row (`keys` None). The keys deleted."""
        with self._transaction() as db:
            if keys is None:
                found = [r[0] for r in db.execute("SELECT key FROM workflow_cache").fetchall()]
                db.execute("DELETE FROM workflow_cache")
                return found
            chosen: list[str] = []
            for given in keys:
                chosen.append(_one_key(db, given))
            for key in dict.fromkeys(chosen):
                db.execute("DELETE FROM workflow_cache WHERE key = ?", (key,))
            return list(dict.fromkeys(chosen))

    def prune_cache(
        self: _Dialect, *, now: float, older_than_seconds: float | None = None
    ) -> list[str]:
        """Delete expired entries, entries created more than `older_than_seconds` ago, and
        lease rows whose lease has expired (left by a runner that died). The keys deleted."""
        where = (
            f"({_ENTRY} AND expires_at IS NOT NULL AND expires_at <= ?) OR (NOT {_ENTRY} AND "
            "(lease_expires_at IS NULL OR lease_expires_at <= ?))"
        )
        params: list[Any] = [now, now]
        if older_than_seconds is not None:
            where += f" OR ({_ENTRY} AND created_at < ?)"
            params.append(now - older_than_seconds)
        with self._transaction() as db:
            selected = db.execute(f"SELECT key FROM workflow_cache WHERE {where}", params)
            found = [r[0] for r in selected.fetchall()]
            db.execute(f"DELETE FROM workflow_cache WHERE {where}", params)
        return found


MIN_KEY_PREFIX = 8


def _one_key(db: Connection, given: str) -> str:
    """The stored key `given` names: itself, or the one key it is a prefix of."""
    text = given.strip().lower()
    if db.execute("SELECT 1 FROM workflow_cache WHERE key = ?", (text,)).fetchone():
        return text
    if len(text) >= MIN_KEY_PREFIX and all(c in "0123456789abcdef" for c in text):
        rows = db.execute(
            "SELECT key FROM workflow_cache WHERE substr(key, 1, ?) = ? ORDER BY key LIMIT 2",
            (len(text), text),
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if rows:
            raise NotFoundError(f"cache key prefix {given!r} is ambiguous: give more characters")
    hint = "" if len(text) >= MIN_KEY_PREFIX else f" (a prefix needs {MIN_KEY_PREFIX}+ characters)"
    raise NotFoundError(f"no cache entry with key {given!r}{hint}; see `ax cache list`")
