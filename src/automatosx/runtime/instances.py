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
An approval gate that waits for its decision (`waiting`) holds no slot; the table keeps
the set of them (`waiting`), since the execution is not idle while one waits.

A forEach step that fanned out is `running` and holds no slot; its items (`review[0]`,
`review[1]`, ... created at run time, with their `parent_key`) wait in a queue of their own,
in index order, which the parent stands for in the main queue: when the parent reaches the
head, its next item starts if fewer than its `maxParallel` run; at that limit the parent
leaves the queue until one of its items ends.
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
    """An attempt running, or a retry waiting for its backoff to end. (A forEach step that
    fanned out is `running` too, but holds no slot: its items do.)"""
    state = record.state
    return (state == "running" and record.items is None) or (
        state == "pending" and record.retry_at is not None
    )


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
        self._children: dict[str, list[str]] = {}  # parent -> its items' keys, by index
        self._unsettled: dict[str, int] = {}  # parent -> items not yet settled
        for record in sorted(records, key=_file_order):
            self.records[record.key] = record
            if record.parent_key is not None:
                self._children.setdefault(record.parent_key, []).append(record.key)
                if not is_settled(record):
                    self._unsettled[record.parent_key] = (
                        self._unsettled.get(record.parent_key, 0) + 1
                    )
        missing = [key for key in graph.keys if key not in self.records]
        if missing:
            raise ValueError(f"no instance for steps {missing}")
        self._rank = {key: i for i, key in enumerate(graph.topological_order)}
        self._exclusive = frozenset(k for k, p in plans.items() if not p.spec.parallel)
        self._unmet = {
            key: sum(1 for dep in deps if not self._satisfied(dep))
            for key, deps in graph.dependencies.items()
        }
        self._ready: list[int] = []  # ranks of top-level instances that may be queued
        self._queue: deque[str] = deque()  # ready, in the order they became so (see module)
        self._queued: set[str] = set()
        self._ready_items: dict[str, deque[str]] = {}  # parent -> its ready items
        self._queued_items: set[str] = set()
        self._parked: set[str] = set()  # parents at their maxParallel, out of the queue
        self.holding: set[str] = {k for k, r in self.records.items() if holds_slot(r)}
        # Approval gates waiting for a decision: no slot, but the run is not idle.
        self.waiting: set[str] = {k for k, r in self.records.items() if r.state == "waiting"}
        self._running_items: dict[str, int] = {}  # parent -> its items holding a slot
        for key in self.holding:
            parent = self.records[key].parent_key
            if parent is not None:
                self._running_items[parent] = self._running_items.get(parent, 0) + 1
        # What prompts read: completed outputs, and the steps whose placeholders render
        # empty; kept up to date (a chain of 1,000 renders 1,000 times).
        self.outputs: dict[str, Any] = {}
        self.empty: set[str] = set()
        for key, record in self.records.items():
            if record.parent_key is None and satisfies_dependents(record, self.plan(record)):
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
        """Non-optional steps that failed, in the order they failed (a forEach step stands
        for its items)."""
        failed = [
            r
            for r in self.records.values()
            if r.state == "failed"
            and r.parent_key is None
            and not self.plans[r.step_key].spec.optional
        ]
        return sorted(failed, key=lambda r: (r.completed_at or 0.0, r.position))

    def items_of(self, parent: str) -> list[StepInstanceRecord]:
        """A forEach step's item instances, by index."""
        return [self.records[key] for key in self._children.get(parent, ())]

    def items_settled(self, parent: str) -> bool:
        return self._unsettled.get(parent, 0) == 0

    def downstream_pending(self, key: str) -> list[StepInstanceRecord]:
        """Pending steps downstream of `key`, in topological order."""
        below = self.graph.downstream(self.records[key].step_key)
        keys = sorted(below, key=self._rank.__getitem__)
        return [self.records[k] for k in keys if self.records[k].state == "pending"]

    def blocked_pending(self) -> list[tuple[StepInstanceRecord, str]]:
        """Pending steps with a dependency that can never satisfy them (after a failure
        with `continueOnError`), each with that dependency: they will never run."""
        blocked: list[tuple[StepInstanceRecord, str]] = []
        if not any(r.state in _BLOCKING for r in self.records.values()):
            return blocked  # a new execution, or nothing failed
        for record in self.records.values():
            if record.state != "pending" or record.parent_key is not None:
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
        """Replace (or add: a forEach item) an instance's record and update what is derived
        from it (every step passes here twice: it is the engine's inner loop)."""
        key = record.key
        old = self.records.get(key)
        self.records[key] = record
        state = record.state
        parent = record.parent_key
        if parent is not None:
            self._apply_item(record, old)
        elif (
            old is not None
            and state != old.state
            and satisfies_dependents(record, self.plans[record.step_key])
        ):
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
        holding = self.holding
        if (state == "running" and record.items is None) or (
            state == "pending" and record.retry_at is not None
        ):
            if parent is not None and key not in holding:
                self._running_items[parent] = self._running_items.get(parent, 0) + 1
            holding.add(key)
        elif key in holding:
            holding.discard(key)
            if parent is not None:
                self._running_items[parent] -= 1
                self._unpark(parent)
        if state == "waiting":
            self.waiting.add(key)
        elif key in self.waiting:
            self.waiting.discard(key)
        if state == "pending":
            self._maybe_ready(key)

    def _apply_item(self, record: StepInstanceRecord, old: StepInstanceRecord | None) -> None:
        parent = record.parent_key
        assert parent is not None
        if old is None:
            self._children.setdefault(parent, []).append(record.key)
            if not is_settled(record):
                self._unsettled[parent] = self._unsettled.get(parent, 0) + 1
        elif is_settled(record) and not is_settled(old):
            self._unsettled[parent] -= 1
        elif is_settled(old) and not is_settled(record):  # reopened on resume
            self._unsettled[parent] += 1

    # ---- scheduling ----

    def may_start(self) -> bool:
        """Whether `take_startable` could return something (cheap; no side effects)."""
        return bool(self._ready or self._queue)

    def take_startable(self) -> list[str]:
        """Ready instances that may start now, given the slots, exclusive steps and forEach
        limits. The caller starts each one (which makes it hold its slot) before asking
        again."""
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
        running_items: dict[str, int] | None = None
        queue = self._queue
        while queue and not exclusive_running:
            key = queue[0]
            if self.records[key].items is not None:  # a forEach step: its next item
                if running_items is None:
                    running_items = dict(self._running_items)
                item = self._next_item(key, running_items, busy)
                if item is None:
                    if busy >= self.parallelism and key in self._queued:
                        break  # no slot, and the parent keeps its place
                    continue
                busy += 1
                running_items[key] = running_items.get(key, 0) + 1
                started.append(item)
                continue
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

    def _next_item(self, parent: str, running_items: dict[str, int], busy: int) -> str | None:
        """The parent at the head of the queue: its next ready item if a slot and its limit
        allow; otherwise None, and the parent leaves the queue when it has no ready item
        (it comes back with the next one) or is at its limit (it is parked until one of its
        items ends). At a full slot count the parent keeps its place."""
        waiting = self._ready_items.get(parent)
        while waiting and not self._is_ready(waiting[0]):
            self._queued_items.discard(waiting.popleft())
        if not waiting:
            self._queue.popleft()
            self._queued.discard(parent)
            return None
        plan = self.plans[self.records[parent].step_key]
        limit = plan.for_each.max_parallel if plan.for_each is not None else self.parallelism
        if running_items.get(parent, 0) >= limit:
            self._queue.popleft()
            self._queued.discard(parent)
            self._parked.add(parent)
            return None
        if busy >= self.parallelism:
            return None
        item = waiting.popleft()
        self._queued_items.discard(item)
        return item

    def _satisfied(self, key: str) -> bool:
        record = self.records[key]
        return satisfies_dependents(record, self.plan(record))

    def _is_ready(self, key: str) -> bool:
        record = self.records[key]
        if record.state != "pending" or record.retry_at is not None:
            return False
        parent = record.parent_key
        if parent is None:
            return self._unmet[record.step_key] == 0
        return self.records[parent].state == "running"  # its step fanned out, and goes on

    def _maybe_ready(self, key: str) -> None:
        if not self._is_ready(key):
            return
        parent = self.records[key].parent_key
        if parent is None:
            if key not in self._queued:
                heapq.heappush(self._ready, self._rank[key])
            return
        if key not in self._queued_items:
            self._ready_items.setdefault(parent, deque()).append(key)
            self._queued_items.add(key)
        if parent not in self._queued and parent not in self._parked:
            self._queue.append(parent)
            self._queued.add(parent)

    def _unpark(self, parent: str) -> None:
        """One of its items ended: a parent parked at its limit may go on."""
        if parent in self._parked:
            self._parked.discard(parent)
            if self._ready_items.get(parent) and parent not in self._queued:
                self._queue.append(parent)
                self._queued.add(parent)


def _file_order(record: StepInstanceRecord) -> tuple[int, int]:
    return record.position, -1 if record.item_index is None else record.item_index
