"""Running a runner's child executions in its own process (SPEC section 8, sub-workflows).

Each child is driven by an `ExecutionRunner` of its own (its own lease, heartbeat,
control requests and checkpoints) on the parent's event loop, as a task the parent tracks
like an attempt. What reaches the child from the parent:

- **cancel** (and any ending that stops running steps: a failure, the workflow timeout,
  Ctrl-C): the child is asked to cancel and the parent waits until it has ended, its
  agents killed, before it records its own ending;
- **pause**: the parent asks its running children to pause and records `paused` only once
  they have (a child that pauses by itself pauses its parent too);
- **resume / recover**: the step's child already exists (`child_execution_id`, written with
  the step's start), so the resumed parent takes the child's lease over and continues it,
  or reads how it ended; it never creates a second one.

A child's depth is its number of ancestors, read from the store when its first child is
due; more than `MAX_NESTING` fails the step (`subworkflow_failed`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from automatosx.agents.base import ProviderResult
from automatosx.definition.subworkflows import MAX_NESTING
from automatosx.errors import AxError, StepError, WorkflowValidationError
from automatosx.runtime import transitions
from automatosx.runtime.cache_policy import CacheMode
from automatosx.runtime.children import ChildOutcome, ChildStart, ChildState, step_results
from automatosx.runtime.context import check_context
from automatosx.runtime.engine import ExecutionOutcome, ExecutionRunner
from automatosx.runtime.lease import new_owner
from automatosx.runtime.preparation import PreparedWorkflow
from automatosx.store.base import Store
from automatosx.store.records import (
    CreateChildExecution,
    ExecutionRecord,
    Lease,
    PutInstance,
    WriteOp,
)

CHILD_PROVIDER = "workflow"  # what a completed child's result names as its provider


class SubworkflowRunner:
    """The children of one execution (its `ExecutionContext.children`)."""

    def __init__(
        self,
        store: Store,
        execution_id: str,
        prepared: PreparedWorkflow,
        lease_seconds: float,
        cache: CacheMode = "use",
    ) -> None:
        self.store = store
        self.execution_id = execution_id
        self.prepared = prepared
        self.lease_seconds = lease_seconds
        self.cache = cache  # children use the result cache as their parent does
        self._execution: ExecutionRecord | None = None
        self._depth: int | None = None

    # ---- a new child ----

    def create(self, key: str, workflow: str, context: dict[str, Any], now: float) -> ChildStart:
        depth = self._ancestors() + 1
        if depth > MAX_NESTING:
            raise StepError(
                "subworkflow_failed",
                f"sub-workflow {workflow} would nest {depth} levels deep, deeper than the "
                f"limit of {MAX_NESTING}",
            )
        prepared = self.prepared.children.get(workflow)
        if prepared is None:
            raise StepError(
                "subworkflow_failed", f"execution {self.execution_id} stores no {workflow}"
            )
        try:
            check_context(prepared.definition, context)
        except WorkflowValidationError as exc:
            raise StepError("template_error", f"with: {exc.issues[0].message}") from None
        parent = self._parent()
        child_id = str(uuid.uuid4())
        create = CreateChildExecution(
            execution_id=child_id,
            definition=prepared.definition,
            subworkflows=prepared.subworkflows,
            context=context,
            triggered_by=f"{parent.workflow_name}/{key}",
            priority=parent.priority,
            workdir=str(prepared.workdir.resolve()),
            lease_owner=new_owner(),
            lease_expires_at=time.time() + self.lease_seconds,
            instances=transitions.create_instances(child_id, prepared.plans.values()),
        )
        return ChildStart(child_id, create, prepared)

    # ---- running one ----

    def runner(self, child_id: str, start: ChildStart | None) -> ExecutionRunner | None:
        return self._new_runner(start) if start is not None else self._attach(child_id)

    async def run(
        self,
        key: str,
        attempt: int,
        child_id: str,
        runner: ExecutionRunner,
        stop_reason: Callable[[], str | None],
    ) -> ChildOutcome:
        began = time.time()
        try:
            ended = await _drive(runner, stop_reason)
        except AxError as exc:  # its lease was taken over, its disk is full, ...
            return self.failed(key, attempt, child_id, exc, began=began)
        return self._outcome(key, attempt, began, ended.state, ended.error, child_id, runner)

    def ended(self, key: str, attempt: int, child_id: str) -> ChildOutcome:
        child = self.store.get_execution(child_id)
        return self._outcome(key, attempt, time.time(), child.state, child.error, child_id)

    def failed(
        self, key: str, attempt: int, child_id: str, exc: Exception, *, began: float | None = None
    ) -> ChildOutcome:
        now = time.time()
        error = StepError("subworkflow_failed", f"child execution {child_id}: {exc}")
        return ChildOutcome(
            key, attempt, began or now, now, error=error, child_execution_id=child_id
        )

    def _new_runner(self, start: ChildStart) -> ExecutionRunner:
        """The runner of a child the parent's last write created (and leased to it)."""
        from automatosx.runtime.control import build_runner

        create, prepared = start.create, start.prepared
        lease = Lease(start.execution_id, create.lease_owner, 1, create.lease_expires_at)
        definition = prepared.definition
        steps = len(create.instances)

        def opening(now: float) -> list[WriteOp]:
            return transitions.open_execution(
                workflow_name=definition.name,
                version=definition.version,
                triggered_by=create.triggered_by,
                priority=create.priority,
                steps=steps,
                parallelism=definition.config.parallelism,
                owner=create.lease_owner,
                workdir=create.workdir,
                now=now,
            )

        instances = [op.instance for op in create.instances if isinstance(op, PutInstance)]
        return build_runner(
            self.store,
            lease,
            prepared,
            create.context,
            instances,
            opening,
            self.lease_seconds,
            cache=self.cache,
        )

    def _attach(self, child_id: str) -> ExecutionRunner | None:
        """The runner continuing an existing child (None: it ended already)."""
        from automatosx.runtime.control import resume_execution

        child = self.store.get_execution(child_id)
        if child.is_terminal:
            return None
        return resume_execution(self.store, child_id, cache=self.cache, attach=True)

    def _outcome(
        self,
        key: str,
        attempt: int,
        began: float,
        state: str,
        error: str | None,
        child_id: str,
        runner: ExecutionRunner | None = None,
    ) -> ChildOutcome:
        now = time.time()
        if state == "completed":
            records = runner.table if runner is not None else self.store.list_instances(child_id)
            result = ProviderResult(step_results(records), CHILD_PROVIDER)
            return ChildOutcome(
                key, attempt, began, now, result, state="completed", child_execution_id=child_id
            )
        if state == "paused":
            return ChildOutcome(
                key, attempt, began, now, state="paused", child_execution_id=child_id
            )
        ended = "was cancelled" if state == "cancelled" else "failed"
        problem = StepError(
            "subworkflow_failed",
            f"child execution {child_id} {ended}" + (f": {error}" if error else ""),
        )
        final: ChildState = "cancelled" if state == "cancelled" else "failed"
        return ChildOutcome(
            key, attempt, began, now, error=problem, state=final, child_execution_id=child_id
        )

    # ---- where this execution stands ----

    def _parent(self) -> ExecutionRecord:
        if self._execution is None:
            self._execution = self.store.get_execution(self.execution_id)
        return self._execution

    def _ancestors(self) -> int:
        """How many executions are above this one (0: it is at the top)."""
        if self._depth is None:
            depth, above = 0, self._parent().parent_execution_id
            while above is not None and depth <= MAX_NESTING:
                depth += 1
                above = self.store.get_execution(above).parent_execution_id
            self._depth = depth
        return self._depth


async def _drive(
    runner: ExecutionRunner, stop_reason: Callable[[], str | None]
) -> ExecutionOutcome:
    """The child's run; if the parent's task is cancelled meanwhile, the child is cancelled
    with the parent's reason and awaited (or, the parent aborting, stopped at once)."""
    task = asyncio.ensure_future(runner.run())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        reason = stop_reason()
        if reason is None:
            task.cancel()
        else:
            runner.request_cancel(reason)
        await asyncio.gather(task, return_exceptions=True)
        raise
