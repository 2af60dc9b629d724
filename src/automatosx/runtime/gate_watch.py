"""The runner's watch over its approval gates while they wait (SPEC section 8, `approval:`).

A decision is recorded by whoever gives it (`approvals.decide`, a compare-and-set on the
gate's `workflow_approvals` row), in any process and at any time; only the runner turns it
into the gate's end, under its lease. So the runner has to look: on its control tick
while a gate waits, on the first turn after a resume, and when a gate's deadline passes
(it records the `onTimeout` decision first). `GateWatch` keeps what that takes apart from
the runner's loop: the deadline timers, which of them fired, whether to read the store.
What a decision does (the gate's end and its effects on the rest of the run) is the turn
function's, `Decisions.decide_gate`, reached through the `decide` callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from automatosx.runtime.instances import InstanceTable
from automatosx.store.async_store import AsyncStore
from automatosx.store.records import ApprovalRecord


class GateWatch:
    """The waiting gates of one execution: their deadlines and their decisions."""

    def __init__(
        self,
        store: AsyncStore,
        execution_id: str,
        table: InstanceTable,
        *,
        decide: Callable[[ApprovalRecord, float], None],
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._execution_id = execution_id
        self._table = table
        self._decide = decide  # a recorded decision ends its gate (`Decisions.decide_gate`)
        self._wake = wake  # wake the runner's loop
        self._deadlines: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._expired: list[str] = []  # gates whose deadline timer fired
        self._check = False  # read the recorded decisions on the next turn

    @property
    def due(self) -> bool:
        """Whether the next turn has decisions to read or deadlines to record."""
        return self._check or bool(self._expired)

    def next_deadline(self) -> float | None:
        """The earliest deadline of the gates still waiting (None: none has one)."""
        waiting = self._table.waiting
        found = [at for key, at in self._deadlines.items() if key in waiting]
        return min(found) if found else None

    def look_again(self) -> None:
        """The control tick: a decision may have been recorded meanwhile."""
        if self._table.waiting:
            self._check = True

    def only_gates_wait(self, *, running: bool) -> bool:
        """Nothing runs (`running`: an attempt or a child) and the gates wait: nothing
        changes until a decision, so a periodic checkpoint would only repeat the last one
        (every minute for days), and the control poll may slow down."""
        return bool(self._table.waiting) and not running and not self._table.holding

    async def rearm(self, *, until: float) -> None:
        """A resumed execution with gates waiting: their stored deadlines are armed again
        (one already past decides at once), and the decisions recorded while no runner
        watched are read on the first turn."""
        stored = await self._store.waiting_approvals(
            self._execution_id, decided_only=False, until=until
        )
        for approval in stored:
            if approval.expires_at is not None:
                self.watch(approval.step_key, approval.expires_at)
        self._check = True

    def watch(self, key: str, deadline: float) -> None:
        """Wake the runner when the gate `key` reaches its (absolute) deadline."""
        self._deadlines[key] = deadline
        delay = max(0.0, deadline - time.time())
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._on_deadline, key)

    def _on_deadline(self, key: str) -> None:
        self._expired.append(key)
        self._wake()

    async def decide(self, now: float, *, until: float) -> None:
        """Deadlines that passed record their `onTimeout` decision (unless a person's came
        first: the store's compare-and-set keeps the first); then every decision recorded
        for a waiting gate ends it. No gate waiting, no query."""
        expired, self._expired = self._expired, []
        self._check = False
        store, execution_id, waiting = self._store, self._execution_id, self._table.waiting
        for key in expired:
            if key in waiting:
                # The timer fired, so the deadline passed (whatever the wall clock says).
                at = max(time.time(), self._deadlines[key])
                await store.expire_approval(execution_id, key, now=at, until=until)
        if not waiting:
            return
        decided = await store.waiting_approvals(execution_id, decided_only=True, until=until)
        for approval in decided:
            if approval.step_key in waiting:  # an item failed before may have cancelled it
                self._apply(approval, now)

    def _apply(self, approval: ApprovalRecord, now: float) -> None:
        self._decide(approval, now)
        timer = self._timers.pop(approval.step_key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """The run is over: no deadline wakes it any more."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
