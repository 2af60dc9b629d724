"""Starting, resuming, pausing and cancelling executions: the operations behind the CLI.

Each returns (or drives) an `ExecutionRunner`, or acts on the store directly when no runner
is alive: pausing or cancelling an execution whose runner died takes its lease over (which
bumps the fencing epoch) and commits the transition itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.subworkflows import Subworkflow, subworkflows_from_document
from automatosx.definition.validation import validate_document
from automatosx.errors import StateConflictError
from automatosx.runtime import transitions
from automatosx.runtime.cache import CachingExecutor
from automatosx.runtime.cache_policy import CacheMode
from automatosx.runtime.context import check_context
from automatosx.runtime.engine import CommitObserver, ExecutionContext, ExecutionRunner
from automatosx.runtime.executor import Executor, LocalExecutor
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.lease import lease_seconds, new_owner
from automatosx.runtime.preparation import PreparedWorkflow, prepare_workflow
from automatosx.runtime.recovery import recovered_instances
from automatosx.secrets import redactor_from_env
from automatosx.store.async_store import AsyncStore
from automatosx.store.base import Store
from automatosx.store.liveness import is_orphaned, lease_is_live, owner_is_dead
from automatosx.store.records import (
    TERMINAL_STATES,
    ControlRequest,
    ExecutionRecord,
    ExecutionState,
    Lease,
    PutInstance,
    SetSubworkflows,
    StepInstanceRecord,
    WriteOp,
)

# Unfinished and not paused: what a runner may have been driving when it died.
ACTIVE_STATES: tuple[ExecutionState, ...] = tuple(
    state for state in get_args(ExecutionState) if state not in TERMINAL_STATES | {"paused"}
)


def start_execution(
    store: Store,
    prepared: PreparedWorkflow,
    *,
    context: dict[str, Any],
    triggered_by: str = "cli",
    priority: int = 0,
    on_commit: CommitObserver | None = None,
    cache: CacheMode = "use",
) -> ExecutionRunner:
    """Record a new execution (leased to this process, every step a pending instance) and
    the runner that will drive it (`cache`: how it uses the result cache)."""
    definition = prepared.definition
    check_context(definition, context)
    seconds = lease_seconds()
    workflow = store.upsert_workflow(definition)
    execution_id = str(uuid.uuid4())
    owner = new_owner()
    workdir = str(prepared.workdir.resolve())
    created = transitions.create_instances(execution_id, prepared.plans.values())
    _, lease = store.create_execution(
        workflow_id=workflow.id,
        context=context,
        triggered_by=triggered_by,
        priority=priority,
        owner=owner,
        lease_seconds=seconds,
        workdir=workdir,
        execution_id=execution_id,
        opening_ops=[*created, SetSubworkflows(prepared.subworkflows)]
        if prepared.subworkflows
        else created,
    )

    opening = opening_of_new(
        definition, triggered_by=triggered_by, priority=priority, steps=len(created),
        owner=owner, workdir=workdir,
    )  # fmt: skip
    instances = [op.instance for op in created if isinstance(op, PutInstance)]
    del created  # the table keeps the records; 10,000 operations need not stay alive
    return build_runner(
        store,
        lease,
        prepared,
        context,
        instances,
        opening,
        seconds,
        on_commit=on_commit,
        cache=cache,
    )


def submit_execution(
    store: Store,
    prepared: PreparedWorkflow,
    *,
    context: dict[str, Any],
    triggered_by: str = "cli",
    priority: int = 0,
) -> ExecutionRecord:
    """Record a new execution for `ax worker` processes (SPEC section 9): every step a
    pending instance, state `queued`, and its first turn deferred in the same transaction, so
    it is never stored without a job that will run it. No runner holds its lease (it
    expires as it is written): the workers take its turns (`runtime.turn`)."""
    definition = prepared.definition
    check_context(definition, context)
    workflow = store.upsert_workflow(definition)
    execution_id = str(uuid.uuid4())
    created = transitions.create_instances(execution_id, prepared.plans.values())
    extra: list[WriteOp] = [SetSubworkflows(prepared.subworkflows)] if prepared.subworkflows else []
    store.create_execution(
        workflow_id=workflow.id,
        context=context,
        triggered_by=triggered_by,
        priority=priority,
        owner=new_owner(),
        lease_seconds=0.0,
        workdir=str(prepared.workdir.resolve()),
        execution_id=execution_id,
        opening_ops=[*created, *extra, *transitions.submit(priority, time.time())],
    )
    return store.get_execution(execution_id)


def requeue_submitted(store: Store, id_or_prefix: str) -> ExecutionRecord:
    """`resume` of a submitted execution: it goes back to the workers (paused: `queued`
    again, with a turn) rather than running in the asking shell."""
    execution = store.get_execution(id_or_prefix)
    _refuse_unresumable(store, execution, child_too=True)
    store.wake_execution(execution.id, requeue_paused=True)
    return store.get_execution(execution.id)


def _refuse_unresumable(store: Store, execution: ExecutionRecord, *, child_too: bool) -> None:
    """What no resume continues: an execution that ended, a child its parent steers
    (`child_too`), or one a live runner drives."""
    if execution.is_terminal:
        raise StateConflictError(
            f"execution {execution.id} is {execution.state}: there is nothing to resume"
        )
    if child_too:
        refuse_child(store, execution, "resume")
    if execution.state != "paused" and lease_is_live(execution):
        raise StateConflictError(running_message(execution))


def opening_of_new(
    definition: WorkflowDefinition,
    *,
    triggered_by: str,
    priority: int,
    steps: int,
    owner: str,
    workdir: str | None,
) -> Callable[[float], list[WriteOp]]:
    """The first write of a new execution's runner: `executing`, `workflow_started`."""

    def opening(now: float) -> list[WriteOp]:
        return transitions.open_execution(
            workflow_name=definition.name,
            version=definition.version,
            triggered_by=triggered_by,
            priority=priority,
            steps=steps,
            parallelism=definition.config.parallelism,
            owner=owner,
            workdir=workdir,
            now=now,
        )

    return opening


def prepared_as_stored(
    store: Store,
    execution: ExecutionRecord,
    prepare: Callable[..., PreparedWorkflow] = prepare_workflow,
) -> PreparedWorkflow:
    """The execution's own definition and sub-workflow files, prepared to run where it
    started (what a resume or a worker's start runs, never the files as they are now)."""
    subworkflows = stored_subworkflows(store, execution)
    return prepare(
        stored_definition(store, execution),
        workdir=execution_workdir(execution),
        **({"subworkflows": subworkflows} if subworkflows else {}),
    )


def stored_definition(store: Store, execution: ExecutionRecord) -> WorkflowDefinition:
    """The definition the execution started with (each execution keeps its own copy): a
    workflow is stored by (name, version), so an edited file run later under the same
    version must not change the steps a paused or orphaned execution resumes."""
    return validate_document(store.execution_definition(execution.id))


def stored_subworkflows(store: Store, execution: ExecutionRecord) -> dict[str, Subworkflow]:
    """The sub-workflow files the execution started with (stored with it: a resume never
    reads the files again)."""
    return subworkflows_from_document(store.execution_subworkflows(execution.id))


def refuse_child(store: Store, execution: ExecutionRecord, command: str) -> None:
    """A child whose parent goes on is steered through its parent (which resumes it)."""
    if execution.parent_execution_id is None:
        return
    parent = store.get_execution(execution.parent_execution_id)
    if not parent.is_terminal:
        raise StateConflictError(
            f"execution {execution.id} is a sub-workflow of {parent.id} ({parent.state}): "
            f"{command} that one (`ax workflow {command} {parent.id}`), which {command}s this "
            "one with it"
        )


def execution_workdir(execution: ExecutionRecord) -> Path:
    """Where the execution's steps run: the directory it started in (older executions,
    which did not record it, run where the command is typed)."""
    return Path(execution.workdir) if execution.workdir else Path.cwd()


def resume_execution(
    store: Store,
    id_or_prefix: str,
    *,
    prepare: Callable[..., PreparedWorkflow] = prepare_workflow,
    on_commit: CommitObserver | None = None,
    cache: CacheMode = "use",
    attach: bool = False,
) -> ExecutionRunner:
    """Take over a paused or orphaned execution and return the runner that continues it,
    in the directory it started in. A sub-workflow's child is continued by its parent
    (`attach`: the parent's runner asks), not on its own."""
    execution = store.get_execution(id_or_prefix)
    _refuse_unresumable(store, execution, child_too=not attach)
    prepared = prepared_as_stored(store, execution, prepare)
    seconds = lease_seconds()
    lease = take_over(store, execution, seconds)
    instances, filled = recovered_instances(
        execution.id, prepared.plans, store.list_instances(execution.id)
    )
    checkpoint = store.latest_checkpoint(execution.id)

    def opening(now: float) -> list[WriteOp]:
        return filled + transitions.resume_execution(
            execution,
            instances,
            owner=lease.owner,
            checkpoint_id=checkpoint.id if checkpoint else None,
            checkpoint_created_by=checkpoint.created_by if checkpoint else None,
            now=now,
        )

    return build_runner(
        store,
        lease,
        prepared,
        execution.context,
        instances,
        opening,
        seconds,
        on_commit=on_commit,
        cache=cache,
    )


def build_runner(
    store: Store,
    lease: Lease,
    prepared: PreparedWorkflow,
    context: dict[str, Any],
    instances: list[StepInstanceRecord],
    opening: Callable[[float], list[WriteOp]],
    seconds: float,
    *,
    on_commit: CommitObserver | None = None,
    cache: CacheMode = "use",
) -> ExecutionRunner:
    """The runner of a new or resumed execution, or of a child execution its parent's
    write just created (and leased), starting with its `opening` operations; when some
    step is cached (and `cache` is not "off"), its attempts go through the result cache.
    Its attempts run in this process."""
    definition = prepared.definition
    table = InstanceTable(
        prepared.graph, prepared.plans, instances, parallelism=definition.config.parallelism
    )
    run = ExecutionContext(
        execution_id=lease.execution_id,
        definition=definition,
        context=context,
        workdir=prepared.workdir,
        redactor=redactor_from_env(),
    )
    if any(plan.spec.workflow is not None for plan in prepared.plans.values()):
        from automatosx.runtime.subworkflows import SubworkflowRunner  # it builds runners

        run.children = SubworkflowRunner(store, lease.execution_id, prepared, seconds, cache)
    async_store = AsyncStore(store)
    executor: Executor = LocalExecutor(prepared.router)
    if cache != "off" and any(plan.cache for plan in prepared.plans.values()):
        executor = CachingExecutor(
            executor,
            async_store,
            mode=cache,
            providers=prepared.router.provider_order,
            patience_s=seconds,
        )
    return ExecutionRunner(
        store=async_store,
        lease=lease,
        run=run,
        table=table,
        executor=executor,
        opening=opening,
        lease_seconds=seconds,
        on_commit=on_commit,
    )


def take_over(store: Store, execution: ExecutionRecord, seconds: float) -> Lease:
    """Acquire the execution's lease; a lease still held by a dead process on this host is
    treated as expired. Raises StateConflictError if another live runner holds it (for two
    racing takeovers, the store lets exactly one win)."""
    now = time.time()
    expires = execution.lease_expires_at
    if execution.lease_owner and expires and expires > now and owner_is_dead(execution.lease_owner):
        now = expires + 0.001
    return store.acquire_lease(execution.id, new_owner(), seconds, now=now)


def running_message(execution: ExecutionRecord) -> str:
    remaining = max(0.0, (execution.lease_expires_at or 0) - time.time())
    return (
        f"execution {execution.id} is running (its runner {execution.lease_owner} holds the "
        f"lease for another {remaining:.0f}s); pause or cancel it first"
    )


def cancel_execution(store: Store, id_or_prefix: str, *, wait_s: float = 10.0) -> ExecutionRecord:
    """Cancel: ask a live runner (and wait for it to stop), or cancel directly."""
    execution = store.get_execution(id_or_prefix)
    if execution.is_terminal:
        raise StateConflictError(f"execution {execution.id} is already {execution.state}")
    if execution.queue_name is not None:
        return _steer_submitted(store, execution, "cancel")
    if not lease_is_live(execution):
        try:
            lease = take_over(store, execution, lease_seconds())
        except StateConflictError:
            execution = store.get_execution(execution.id)
            if execution.is_terminal:
                raise
        else:
            instances = store.list_instances(execution.id)
            ops = transitions.cancel_execution(
                instances,
                reason="cancelled by request",
                now=time.time(),
                step_reason="workflow cancelled (its runner had stopped)",
                previous=execution.state,
            )
            store.write(lease, ops)
            store.release_lease(lease)
            _steer_children(store, instances, cancel_execution)
            return store.get_execution(execution.id)
    store.request_control(execution.id, "cancel")
    return wait_for(store, execution.id, lambda e: e.is_terminal, wait_s)


def pause_execution(store: Store, id_or_prefix: str) -> ExecutionRecord:
    """Pause: ask a live runner (it stops at its next step boundary), or pause directly."""
    execution = store.get_execution(id_or_prefix)
    if execution.is_terminal or execution.state == "paused":
        raise StateConflictError(f"execution {execution.id} is {execution.state}: cannot pause")
    if execution.queue_name is not None:
        return _steer_submitted(store, execution, "pause")
    if not lease_is_live(execution):
        try:
            lease = take_over(store, execution, lease_seconds())
        except StateConflictError:
            execution = store.get_execution(execution.id)
            if execution.is_terminal or execution.state == "paused":
                raise
        else:
            _pause_directly(store, lease, execution)
            return store.get_execution(execution.id)
    requested = store.request_control(execution.id, "pause")
    _request_pause_of_children(store, execution.id)
    return requested


def _steer_submitted(
    store: Store, execution: ExecutionRecord, request: ControlRequest
) -> ExecutionRecord:
    """A cancel or pause of a submitted execution, acted on by a turn this shell takes at
    once (`runtime.turn`): a cancel ends it and stops its attempts wherever they run; a
    pause ends it now if nothing runs, else when the last running attempt answers. Its
    running children are asked by the turn too."""
    from automatosx.runtime.turn import take_turn

    store.request_control(execution.id, request)
    take_turn(store, execution.id)
    return store.get_execution(execution.id)


def _request_pause_of_children(store: Store, execution_id: str) -> None:
    """The running children of a paused execution are asked too, in the store, so each
    stops at its own next step boundary rather than at its parent's (which learns of the
    pause a poll later)."""
    for record in store.list_instances(execution_id):
        if record.child_execution_id is None or record.state != "running":
            continue
        try:
            store.request_control(record.child_execution_id, "pause")
        except StateConflictError:
            continue  # it ended, or paused, meanwhile
        _request_pause_of_children(store, record.child_execution_id)


def _pause_directly(store: Store, lease: Lease, execution: ExecutionRecord) -> None:
    """No runner is alive: attempts the dead one left running are closed as interrupted
    (they run again on resume), then the execution pauses."""
    instances = store.list_instances(execution.id)
    ops = transitions.pause(instances, context=execution.context, now=time.time(), direct=True)
    store.write(lease, ops)
    store.release_lease(lease)
    _steer_children(store, instances, pause_execution)


def _steer_children(
    store: Store,
    instances: list[StepInstanceRecord],
    command: Callable[[Store, str], ExecutionRecord],
) -> None:
    """A cancel or pause given with no runner alive reaches the execution's unfinished
    children too (a parent's runner would have passed it on)."""
    for record in instances:
        if record.child_execution_id is None:
            continue
        child = store.get_execution(record.child_execution_id)
        if child.is_terminal or (child.state == "paused" and command is pause_execution):
            continue
        try:
            command(store, child.id)
        except StateConflictError:
            continue  # it ended (or paused) meanwhile


def orphaned_executions(store: Store) -> list[ExecutionRecord]:
    """Unfinished, not paused, and nobody alive runs them: what `recover` resumes (a
    sub-workflow's child is continued by its parent, not on its own, unless its parent
    ended without it). Submitted executions are left to the workers (`worker.reaper`)."""
    candidates = store.list_executions(limit=100_000, states=ACTIVE_STATES)
    now = time.time()
    return [
        e
        for e in reversed(candidates)
        if is_orphaned(e, now)  # never a submitted one: the workers take those up
        and (
            e.parent_execution_id is None or store.get_execution(e.parent_execution_id).is_terminal
        )
    ]


def wait_for(
    store: Store, execution_id: str, done: Callable[[ExecutionRecord], bool], timeout_s: float
) -> ExecutionRecord:
    deadline = time.monotonic() + timeout_s
    execution = store.get_execution(execution_id)
    while not done(execution) and time.monotonic() < deadline:
        time.sleep(0.05)
        execution = store.get_execution(execution_id)
    return execution
