"""The result cache at run time: an `Executor` that answers an attempt from the store when
it can, and otherwise runs it (through the executor it wraps) under a lease on its key.

For an attempt of a cached step (`Attempt.cache`), in the default mode:

1. **lookup**: one primary-key read. A live entry is a hit: the attempt succeeds at once
   with the entry's output and zero tokens and cost, and no provider is called. The
   engine then completes the step as `cached` (`transitions.succeed`), counting the hit in
   the same write.
2. **lease**: on a miss the attempt takes the key's lease before calling the provider, so
   a second runner asking the same thing meanwhile (another execution, or another item of
   the same forEach) waits for this answer instead of paying for it again: it polls, with
   backoff, until the entry appears (a hit), the lease is released (the call failed: it
   takes the lease and calls), or the lease expires (the runner died: the same). The lease
   is renewed while the call runs, so a slow call keeps it.
3. **store**: a successful, schema-valid outcome carries the key (`CacheUse`); the engine
   stores the entry in the transaction that completes the step (which also ends the
   lease). A failed one, an invalid output, a cancelled attempt store nothing and release
   the lease at once.

`refresh` (`--refresh-cache`) skips the lookup and the lease: it calls the provider and
overwrites the entry. `off` (`--no-cache`) never gets here: the runner runs without this
executor. A row that cannot be read back is a miss (one warning, on stderr), and the new
answer overwrites it. The cache never fails a step: a store that cannot be reached for
the lookup or the lease means the provider is called, as without a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.definition.models import AgentSpec
from automatosx.errors import AxError
from automatosx.runtime.cache_policy import (
    CacheMode,
    CachePolicy,
    CacheUse,
    agent_settings,
    canonical_json,
    key_from_parts,
)
from automatosx.runtime.executor import Attempt, Executor
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.store.async_store import AsyncStore
from automatosx.store.cache import CorruptCacheEntryError
from automatosx.store.records import CacheEntry

LEASE_S = 30.0  # a key's lease; renewed every third of it while the call runs
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.5
Warn = Callable[[str], None]


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class CachingExecutor:
    """Wraps the executor that runs attempts: see the module docstring."""

    def __init__(
        self,
        inner: Executor,
        store: AsyncStore,
        *,
        mode: CacheMode,
        providers: Callable[[AgentSpec], Sequence[str]],
        patience_s: float,
        warn: Warn = _stderr,
    ) -> None:
        self.inner = inner
        self.store = store
        self.mode = mode
        self.providers = providers  # the resolved provider order of an agent (the router's)
        self.patience_s = patience_s  # how long a store call may retry a lost connection
        self.warn = warn
        self._agent_json: dict[int, tuple[AgentSpec, str]] = {}
        self._schema_json: dict[int, tuple[Any, str]] = {}
        self._warned: set[str] = set()

    async def execute(self, attempt: Attempt) -> AttemptOutcome:
        policy = attempt.cache
        if policy is None or self.mode == "off":
            return await self.inner.execute(attempt)
        call = attempt.call
        key = self.key_of(call)
        if self.mode == "refresh":
            return self._stored(await self.inner.execute(attempt), CacheUse(key, policy))
        owner = f"{call.execution_id}:{call.step_key}:{call.attempt}"
        entry = await self._lookup(key, policy)
        if entry is not None:
            return _answered(attempt, CacheUse(key, policy, entry))
        delay = FIRST_POLL_S
        while not await self._take_lease(key, owner):
            await asyncio.sleep(delay)  # another runner is calling the provider for this key
            delay = min(delay * 2, MAX_POLL_S)
            entry = await self._lookup(key, policy)
            if entry is not None:
                return _answered(attempt, CacheUse(key, policy, entry))
        renewing = asyncio.get_running_loop().create_task(self._renew(key, owner))
        try:
            outcome = await self.inner.execute(attempt)
        except BaseException:
            renewing.cancel()
            await self._release(key, owner)
            raise
        renewing.cancel()
        if outcome.result is None:
            await self._release(key, owner)
            return outcome
        return self._stored(outcome, CacheUse(key, policy))

    def key_of(self, call: ProviderCall) -> str:
        """The request's key (`cache_policy`): the agent's and the schema's canonical JSON
        are computed once per run, the prompt's for each attempt."""
        agent = call.agent
        known = self._agent_json.get(id(agent))
        if known is None:
            text = canonical_json(agent_settings(agent, self.providers(agent)))
            known = self._agent_json[id(agent)] = (agent, text)  # holds it: ids stay unique
        schema = call.output_schema
        shaped = self._schema_json.get(id(schema))
        if shaped is None:
            shaped = self._schema_json[id(schema)] = (schema, canonical_json(schema))
        return key_from_parts(known[1], shaped[1], call.prompt)

    @staticmethod
    def _stored(outcome: AttemptOutcome, use: CacheUse) -> AttemptOutcome:
        """A successful outcome carries its key, so the completion stores the entry."""
        if outcome.result is None:
            return outcome
        return dataclasses.replace(outcome, cache=use)

    async def _lookup(self, key: str, policy: CachePolicy) -> CacheEntry | None:
        """The entry under `key` if it may answer: not expired (by the TTL of the step that
        stored it) and, when the asking step has a TTL, younger than that. None for none,
        an expired or too old one, a corrupt one (said once, on stderr), or a store that
        cannot be reached."""
        now = time.time()
        try:
            entry = await self.store.cache_entry(key, until=now + self.patience_s)
        except CorruptCacheEntryError as exc:
            if key not in self._warned:
                self._warned.add(key)
                self.warn(
                    f"warning: cache entry {key} is corrupt ({exc.problem}): calling the "
                    "provider, whose answer replaces it"
                )
            return None
        except AxError as exc:
            self.warn(f"warning: cannot read the result cache ({exc}): calling the provider")
            return None
        if entry is None or not entry.is_live(now):
            return None
        if policy.ttl_ms is not None and (now - entry.created_at) * 1000 >= policy.ttl_ms:
            return None
        return entry

    async def _take_lease(self, key: str, owner: str) -> bool:
        now = time.time()
        try:
            return await self.store.take_cache_lease(
                key, owner, LEASE_S, now=now, until=now + self.patience_s
            )
        except AxError:
            return True  # no lease to be had: call the provider, as without a cache

    async def _renew(self, key: str, owner: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            now = time.time()
            with contextlib.suppress(AxError):
                await self.store.renew_cache_lease(
                    key, owner, LEASE_S, now=now, until=now + self.patience_s
                )

    async def _release(self, key: str, owner: str) -> None:
        with contextlib.suppress(AxError):
            await self.store.release_cache_lease(key, owner, until=time.time() + self.patience_s)


def _answered(attempt: Attempt, use: CacheUse) -> AttemptOutcome:
    """A hit: the attempt succeeds with the entry's output; it cost nothing."""
    entry = use.hit
    assert entry is not None
    result = ProviderResult(
        output=entry.output,
        provider=entry.provider or "cache",
        model=entry.model,
        tokens_in=0,
        tokens_out=0,
        cost_usd=0.0,
    )
    call = attempt.call
    return AttemptOutcome(
        call.step_key, call.attempt, attempt.started_at, time.time(), result, cache=use
    )
