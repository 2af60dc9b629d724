"""The one `Store` interface every reader and writer goes through.

Writers (runners) hold a lease on an execution and pass it to `write`, which applies a batch
of operations in one transaction *only if* the lease's epoch is still current (fencing): a
runner that lost its lease cannot overwrite the new owner's work. Readers never need a lease.
Control requests (`pause`, `cancel`) are a column the runner polls, so any process can ask.

Multi-worker note: leases are per execution today; the same epoch-fenced pattern extends to a
per-step claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL) when steps are spread over workers.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from automatosx.errors import NotFoundError
from automatosx.store.approvals import PendingApproval
from automatosx.store.records import (
    ApprovalDecision,
    ApprovalRecord,
    CacheEntry,
    CheckpointRecord,
    ControlRequest,
    EventRecord,
    ExecutionRecord,
    Lease,
    PruneResult,
    StepExecutionRecord,
    StepInstanceRecord,
    WorkflowRecord,
    WriteOp,
)
from automatosx.store.stats import StatsReport

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition
    from automatosx.store.dispatch import Claim
    from automatosx.store.turns import TurnSession


class Store(Protocol):
    @property
    def connections_can_drop(self) -> bool:
        """Whether a call can fail with `StoreUnavailableError` and not say whether it took
        effect (a network database): then writers number their writes (`write(seq=...)`)."""
        ...

    # ---- lifecycle ----
    def close(self) -> None: ...

    # ---- workflows ----
    def upsert_workflow(self, definition: WorkflowDefinition) -> WorkflowRecord:
        """Insert or update by (name, version); also rewrites its steps and dependencies."""
        ...

    def get_workflow(self, name_or_id: str, version: str | None = None) -> WorkflowRecord:
        """By ID, or by name: that `version`, else the newest. Raises NotFoundError (naming
        the closest stored name, or the versions stored)."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]: ...

    def search_workflows(self, query: str) -> list[WorkflowRecord]:
        """Full-text search over name, description, tags and author: the query's words
        (letters and digits; anything else separates them, so no query is a syntax error)
        must all start a word of the workflow's; best match first (name, then tags, author,
        description weigh in that order), then by name and version. No words: no match."""
        ...

    # ---- executions ----
    def create_execution(
        self,
        *,
        workflow_id: str,
        context: dict[str, Any],
        triggered_by: str,
        priority: int,
        owner: str,
        lease_seconds: float,
        parent_execution_id: str | None = None,
        workdir: str | None = None,
        execution_id: str | None = None,
        opening_ops: Sequence[WriteOp] = (),
    ) -> tuple[ExecutionRecord, Lease]:
        """A new execution in state `idle`, leased to `owner` from the start; `workdir` is
        where its steps run (resume and recover run them there too). `opening_ops` are
        applied in the same transaction (its step instances, its start), so no reader ever
        sees the execution without them. The ID is a new UUID unless given."""
        ...

    def execution_definition(self, execution_id: str) -> dict[str, Any]:
        """The definition (file form) the execution started with: resume runs exactly these
        steps even if the workflow's (name, version) was later stored with other ones."""
        ...

    def execution_subworkflows(self, execution_id: str) -> dict[str, Any]:
        """The sub-workflow files the execution may run, as stored with it (plain data,
        `definition.subworkflows.subworkflows_document`); empty when it runs none."""
        ...

    def get_execution(self, id_or_prefix: str) -> ExecutionRecord:
        """By full ID or a unique prefix of >= 8 characters; NotFoundError otherwise
        (including an ambiguous prefix, with a message saying so)."""
        ...

    def list_executions(
        self,
        *,
        workflow_name: str | None = None,
        limit: int = 20,
        states: Sequence[str] | None = None,
        before: str | None = None,
    ) -> list[ExecutionRecord]:
        """Newest first; `before` (an execution's full ID, the last one of the previous
        page): only those older than it, so pages stay stable while new runs start."""
        ...

    # ---- leases (fencing) ----
    def acquire_lease(
        self, execution_id: str, owner: str, lease_seconds: float, *, now: float | None = None
    ) -> Lease:
        """Take the lease if it is free or expired: bumps the epoch. Raises
        StateConflictError if another owner holds a live lease or the run is terminal."""
        ...

    def renew_lease(
        self, lease: Lease, lease_seconds: float
    ) -> tuple[Lease, ControlRequest | None]:
        """Heartbeat: extends the lease and returns any pending control request.
        Raises LeaseLostError if the epoch moved on."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up (no-op if already lost)."""
        ...

    # ---- control from any process ----
    def request_control(self, execution_id: str, request: ControlRequest) -> ExecutionRecord:
        """Ask the runner to pause or cancel; returns the updated execution."""
        ...

    def control_request(self, execution_id: str) -> ControlRequest | None:
        """The pending request, read cheaply: the runner asks before starting any step, so a
        pause or cancel recorded before that moment is never followed by a new step."""
        ...

    # ---- fenced writes ----
    def write(self, lease: Lease, ops: Sequence[WriteOp], *, seq: int | None = None) -> None:
        """Apply `ops` in order in one transaction, or raise LeaseLostError and apply none.
        With `seq` (increasing within one lease), a write whose number the execution has
        already recorded is not applied again: it committed before its connection dropped."""
        ...

    # ---- reads ----
    def list_instances(self, execution_id: str) -> list[StepInstanceRecord]:
        """The execution's step instances, in the file's order of steps (a step's run-time
        instances after it, by index)."""
        ...

    def list_step_executions(
        self, execution_id: str, *, instances: Sequence[StepInstanceRecord] | None = None
    ) -> list[StepExecutionRecord]:
        """Every attempt of every step instance (the history rows, then each instance's
        latest attempt, which its record holds), ordered by instance key then attempt.
        `instances`: the execution's instances, when the caller has read them already."""
        ...

    def list_checkpoints(
        self, execution_id: str, limit: int | None = None
    ) -> list[CheckpointRecord]:
        """Newest first."""
        ...

    def latest_checkpoint(self, execution_id: str) -> CheckpointRecord | None: ...

    def list_events(
        self, execution_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """In order; `after_id` lets `events --follow` poll for new ones."""
        ...

    def latest_event_id(self) -> int:
        """The newest event's ID in the whole store (0 when there is none): one cheap read
        that tells a watcher (the dashboard's streams) whether anything happened."""
        ...

    # ---- approval gates (store/approvals.py) ----
    def decide_approval(
        self,
        execution_id: str,
        step_key: str,
        decision: ApprovalDecision,
        *,
        by: str,
        comment: str | None,
        now: float,
    ) -> bool:
        """Compare-and-set a person's decision: recorded only if none is, the gate's
        instance is `waiting` and its deadline is later than `now`. True if this call
        recorded it (of racing deciders, exactly one)."""
        ...

    def expire_approval(self, execution_id: str, step_key: str, *, now: float) -> bool:
        """Compare-and-set the timeout's decision (`onTimeout`, by "timeout", at the
        deadline) if the deadline is past at `now` and nothing was decided."""
        ...

    def get_approval(self, execution_id: str, step_key: str) -> ApprovalRecord | None: ...

    def waiting_approvals(
        self, execution_id: str, *, decided_only: bool = False
    ) -> list[ApprovalRecord]:
        """The execution's gates whose instance is `waiting` (only the decided ones: the
        decisions its runner has still to apply)."""
        ...

    def pending_approvals(self) -> list[PendingApproval]:
        """Every gate waiting for a decision in an unfinished execution, oldest first."""
        ...

    # ---- the result cache (store/cache.py) ----
    def cache_entry(self, key: str) -> CacheEntry | None:
        """The entry under `key` (expired ones too), None if none; CorruptCacheEntryError
        if its row cannot be read back."""
        ...

    def take_cache_lease(self, key: str, owner: str, seconds: float, now: float) -> bool:
        """Take the lease on `key` unless another owner holds a live one: of racing
        runners exactly one gets True."""
        ...

    def renew_cache_lease(self, key: str, owner: str, seconds: float, now: float) -> bool: ...

    def release_cache_lease(self, key: str, owner: str) -> None: ...

    def list_cache_entries(self) -> list[CacheEntry]:
        """Newest first; CorruptCacheEntryError names the first row that cannot be read."""
        ...

    def delete_cache_entries(self, keys: Sequence[str] | None = None) -> list[str]:
        """These entries (keys or unique 8+ character prefixes; NotFoundError if one
        matches none, and nothing is deleted), or all (`None`). The keys deleted."""
        ...

    def prune_cache(self, *, now: float, older_than_seconds: float | None = None) -> list[str]:
        """Expired entries, those older than the age, and dead leases. The keys deleted."""
        ...

    # ---- turns of submitted executions (store/turns.py, store/dispatch.py; PostgreSQL) ----
    def turn_session(self, execution_id: str) -> AbstractContextManager[TurnSession]:
        """The execution locked for one turn; what is done through the session commits
        together when the block ends. AxError on a store without the queue (SQLite)."""
        ...

    def wake_execution(self, execution_id: str, *, requeue_paused: bool = False) -> bool:
        """A turn for a submitted execution unless one waits already (with
        `requeue_paused`, a paused one is `queued` again first). True if one was deferred;
        AxError on a store without the queue (SQLite)."""
        ...

    def wake_unattended(self) -> int:
        """A turn for each submitted execution that nothing will give one; how many."""
        ...

    def claim_dispatch(self, dispatch_id: str, worker: str) -> Claim | None:
        """The attempt, now `worker`'s (with the worker that had it before and went
        silent); None if it was answered or cancelled, or its step waits for it no more."""
        ...

    def redefer_dispatches(self) -> int:
        """A new job for each dispatch still awaited whose job will not run; how many."""
        ...

    def release_dispatch(self, dispatch_id: str, worker: str) -> None:
        """`worker`, draining, stopped the attempt it ran: handed on, not lost."""
        ...

    # ---- per-provider concurrency across workers (store/provider_slots.py) ----
    def take_provider_slot(
        self, provider: str, limit: int, holder: str, *, now: float, until: float
    ) -> int | None:
        """A free slot of `provider` (of `limit`), now `holder`'s until `until`; None if
        all are taken."""
        ...

    def renew_provider_slot(self, provider: str, slot: int, holder: str, *, until: float) -> bool:
        """The holder's slot kept until `until` (False: it had expired and was taken)."""
        ...

    def free_provider_slot(self, provider: str, slot: int, holder: str) -> None:
        """The holder's call ended: the slot is free."""
        ...

    # ---- analytics (store/stats.py) ----
    def stats(self, *, since: float, workflow_name: str | None = None) -> StatsReport:
        """Statistics of the executions started at or after `since` (epoch seconds), of
        every workflow or only the one named: per workflow, per step and per error, each
        computed by the database (`ax workflow stats`)."""
        ...

    # ---- retention ----
    def prune(self, older_than_seconds: float, *, now: float | None = None) -> PruneResult:
        """Delete checkpoints older than the age, and events of finished executions older
        than it."""
        ...


def instance_of(store: Store, execution: ExecutionRecord, key: str) -> StepInstanceRecord:
    """The execution's step instance `key` (a step's, or an item's: `review[3]`); an
    unknown key is NotFoundError naming the closest one."""
    instances = {instance.key: instance for instance in store.list_instances(execution.id)}
    instance = instances.get(key)
    if instance is None:
        close = difflib.get_close_matches(key, list(instances), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NotFoundError(f"execution {execution.id} has no step '{key}'{hint}")
    return instance
