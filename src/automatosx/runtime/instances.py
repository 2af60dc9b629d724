"""The execution's step instances in memory, and what scheduling derives from them.

The records are the same `StepInstanceRecord`s the store holds; the engine changes one only
by applying the operations a transition built (`apply_ops`), the same operations it then
commits, so memory and disk cannot drift apart. Everything else here is derived from the
records and kept up to date as they change, like graphlib's `_NodeInfo`: per instance, how
many dependencies still have to be satisfied; which pending instances are ready; which hold
a slot (running, or waiting out a retry's backoff).

Starting order: ready instances wait in the order they became ready (topological order,
file order among equals), so on a resume ties go by the file. A slot is held while an
attempt runs or waits to retry; `parallelism` slots in all. A `parallel: false` step runs
alone: once it reaches the head of the queue nothing new starts until every slot is free,
then it runs with nothing beside it (a barrier; first come, first served, starvation-free).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from automatosx.definition.graph import WorkflowGraph
from automatosx.runtime.plans import StepPlan
from automatosx.store.records import PutInstance, StepInstanceRecord, WriteOp

SETTLED_STATES = frozenset({"completed", "failed", "skipped", "cancelled"})
_BLOCKING = frozenset({"failed", "skipped", "cancelled"})  # states that may block dependents


def satisfies_dependents(record: StepInstanceRecord, plan: StepPlan) -> bool:
    """Whether dependents of this instance may run: it completed, it is an optional step
    that failed, or its condition was false (in the last two cases its placeholders render
    empty)."""
    state = record.state
    return (
        state == "completed"
        or (state == "failed" and plan.spec.optional)
        or (state == "skipped" and record.skip_reason == "condition_false")
    )


def blocks_dependents(record: StepInstanceRecord, plan: StepPlan) -> bool:
    """Whether this instance ended in a way its dependents can never run after."""
    return record.state in SETTLED_STATES and not satisfies_dependents(record, plan)


def holds_slot(record: StepInstanceRecord) -> bool:
    """Running, or pending a retry whose backoff has not ended."""
    return record.state == "running" or (record.state == "pending" and record.retry_at is not None)


def is_settled(record: StepInstanceRecord) -> bool:
    return record.state in SETTLED_STATES


class InstanceTable:
    def __init__(
        self,
        graph: WorkflowGraph,
        plans: Mapping[str, StepPlan],
        records: Iterable[StepInstanceRecord],
        *,
        parallelism: int,
    ) -> None:
        self.graph = graph
        self.plans = plans
        self.parallelism = parallelism
        self.records: dict[str, StepInstanceRecord] = {}
        for record in sorted(records, key=lambda r: (r.position, r.item_index or -1)):
            self.records[record.key] = record
        missing = [key for key in graph.keys if key not in self.records]
        if missing:
            raise ValueError(f"no instance for steps {missing}")
        self._rank = {key: i for i, key in enumerate(graph.topological_order)}
        self._exclusive = frozenset(k for k, p in plans.items() if not p.spec.parallel)
        self._unmet = {
            key: sum(1 for dep in deps if not self._satisfied(dep))
            for key, deps in graph.dependencies.items()
        }
        self._ready: list[int] = []  # ranks of instances that may be queued
        self._queue: deque[str] = deque()  # ready, in the order they became so
        self._queued: set[str] = set()
        self.holding: set[str] = {k for k, r in self.records.items() if holds_slot(r)}
        # What prompts read: completed outputs, and the optional steps that failed (their
        # placeholders render empty); kept up to date, a chain of 1,000 renders 1,000 times.
        self.outputs: dict[str, Any] = {}
        self.empty: set[str] = set()
        for key, record in self.records.items():
            if satisfies_dependents(record, self.plan(record)):
                if record.state == "completed":
                    self.outputs[key] = record.output
                else:
                    self.empty.add(key)
            self._maybe_ready(key)

    # ---- reading ----

    def __getitem__(self, key: str) -> StepInstanceRecord:
        return self.records[key]

    def __iter__(self) -> Iterator[StepInstanceRecord]:
        return iter(self.records.values())

    def plan(self, record: StepInstanceRecord) -> StepPlan:
        return self.plans[record.step_key]

    def in_state(self, *states: str) -> list[StepInstanceRecord]:
        return [r for r in self.records.values() if r.state in states]

    def completed_keys(self) -> list[str]:
        return [r.key for r in self.records.values() if r.state == "completed"]

    def unfinished_keys(self) -> list[str]:
        """Instances that still have to run (running ones included)."""
        return [r.key for r in self.records.values() if not is_settled(r)]

    def is_finished(self) -> bool:
        return all(is_settled(r) for r in self.records.values())

    def failed_for_good(self) -> list[StepInstanceRecord]:
        """Non-optional instances that failed, in the order they failed."""
        failed = [
            r
            for r in self.records.values()
            if r.state == "failed" and not self.plans[r.step_key].spec.optional
        ]
        return sorted(failed, key=lambda r: (r.completed_at or 0.0, r.position))

    def downstream_pending(self, key: str) -> list[StepInstanceRecord]:
        """Pending instances downstream of `key`, in topological order."""
        below = self.graph.downstream(self.records[key].step_key)
        keys = sorted(below, key=self._rank.__getitem__)
        return [self.records[k] for k in keys if self.records[k].state == "pending"]

    def blocked_pending(self) -> list[tuple[StepInstanceRecord, str]]:
        """Pending instances with a dependency that can never satisfy them (after a failure
        with `continueOnError`), each with that dependency: they will never run."""
        blocked: list[tuple[StepInstanceRecord, str]] = []
        if not any(r.state in _BLOCKING for r in self.records.values()):
            return blocked  # a new execution, or nothing failed
        for record in self.records.values():
            if record.state != "pending":
                continue
            for dep in self.graph.dependencies[record.step_key]:
                found = self.records[dep]
                if blocks_dependents(found, self.plan(found)):
                    blocked.append((record, dep))
                    break
        return blocked

    # ---- changing ----

    def apply_ops(self, ops: Sequence[WriteOp]) -> None:
        """Apply the instance records among `ops` (the rest is for the store alone)."""
        for op in ops:
            if type(op) is PutInstance:
                self.apply(op.instance)

    def apply(self, record: StepInstanceRecord) -> None:
        """Replace an instance's record and update what is derived from it (every step
        passes here twice: kept to plain attribute reads, it is the engine's inner loop)."""
        key = record.key
        old = self.records[key]
        self.records[key] = record
        state = record.state
        if state != old.state and satisfies_dependents(record, self.plans[record.step_key]):
            # (satisfying states are final: the old record did not satisfy)
            if state == "completed":
                self.outputs[key] = record.output
            else:
                self.empty.add(key)
            unmet = self._unmet
            for child in self.graph.dependents[record.step_key]:
                unmet[child] -= 1
                if unmet[child] == 0:
                    self._maybe_ready(child)
        if state == "running" or (state == "pending" and record.retry_at is not None):
            self.holding.add(key)
        else:
            self.holding.discard(key)
        if state == "pending":
            self._maybe_ready(key)

    # ---- scheduling ----

    def may_start(self) -> bool:
        """Whether `take_startable` could return something (cheap; no side effects)."""
        return bool(self._ready or self._queue)

    def take_startable(self) -> list[str]:
        """Ready instances that may start now, given the slots and exclusive steps. The
        caller starts each one (which makes it hold its slot) before asking again."""
        if not self._ready and not self._queue:
            return []
        while self._ready:
            key = self.graph.topological_order[heapq.heappop(self._ready)]
            if self._is_ready(key) and key not in self._queued:
                self._queue.append(key)
                self._queued.add(key)
        started: list[str] = []
        busy = len(self.holding)
        exclusive = self._exclusive
        exclusive_running = bool(exclusive) and any(k in exclusive for k in self.holding)
        queue = self._queue
        while queue and not exclusive_running:
            key = queue[0]
            if not self._is_ready(key):  # skipped or cancelled while it waited
                queue.popleft()
                self._queued.discard(key)
                continue
            if key in exclusive:
                if busy:
                    break
                exclusive_running = True
            elif busy >= self.parallelism:
                break
            queue.popleft()
            self._queued.discard(key)
            busy += 1
            started.append(key)
        return started

    def _satisfied(self, key: str) -> bool:
        record = self.records[key]
        return satisfies_dependents(record, self.plan(record))

    def _is_ready(self, key: str) -> bool:
        record = self.records[key]
        return (
            record.state == "pending"
            and record.retry_at is None
            and self._unmet[record.step_key] == 0
        )

    def _maybe_ready(self, key: str) -> None:
        if self._is_ready(key) and key not in self._queued:
            heapq.heappush(self._ready, self._rank[key])
