"""The execution engine: an eager asyncio scheduler that writes every change durably.

One loop drives an execution. Attempts run through the `Executor` as tasks; when one
finishes it only queues its outcome and wakes the loop. Each loop turn then:

1. drains what happened since the last one (finished attempts, due retries, due timers);
2. decides, through `transitions`, what each of those changes and what starts next (the
   new records go into the in-memory `InstanceTable` and the same operations are queued);
3. commits the queued operations in ONE fenced `store.write`;
4. launches the attempts those changes unlocked,

so a step's completion is durable before any dependent starts, while a burst of
completions costs a single transaction. When the turn finds the execution must end
(everything settled, a pause, a failure, a cancel, the workflow timeout) it takes the one
ending path, `_end`: kill what still runs, record it, write the final state.

Two kinds of step do not run as attempts, and each has a collaborator the runner owns and
calls from that loop: approval gates wait for a decision (`gate_watch.GateWatch`: their
deadlines and reading the decisions, in the drain), sub-workflow steps run a child
execution (`child_steps.ChildSteps`: launched after the commit that creates the child,
tracked like an attempt, stopped by the ending path).

Losing the lease (another process took over) stops everything at once and writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from automatosx.agents.base import ProviderCall
from automatosx.definition.expressions import Expression, cel_value, step_value
from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.templates import render
from automatosx.errors import LeaseLostError, StepError, StoreFullError
from automatosx.runtime import approvals, transitions
from automatosx.runtime.child_steps import ChildSteps
from automatosx.runtime.children import ChildOutcome, ChildRunner
from automatosx.runtime.executor import Attempt, Executor
from automatosx.runtime.gate_watch import GateWatch
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.lease import CONTROL_POLL_S, GATES_ONLY_POLL_S, heartbeat_interval
from automatosx.runtime.plans import StepPlan
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.secrets import SecretRedactor
from automatosx.store.async_store import AsyncStore
from automatosx.store.codec import as_stored
from automatosx.store.records import ControlRequest, Lease, StepInstanceRecord, WriteOp

LAUNCH_BATCH = 16  # attempts launched per event-loop turn when many start together
FinalState = Literal["completed", "failed", "cancelled", "paused"]
# A runner of `ax worker` may also let go of an execution whose only work left is approval
# gates waiting for people (`release_when_gates_wait`): it stays `executing`, unleased.
EndState = Literal["completed", "failed", "cancelled", "paused", "released"]
EXIT_CODES: dict[str, int] = {"completed": 0, "failed": 1, "cancelled": 3, "paused": 4}
RELEASE_MARGIN_S = 0.1  # a gate deadline nearer than this is waited for, not let go
CommitObserver = Callable[[Sequence[WriteOp]], None]


@dataclass(frozen=True)
class ExecutionOutcome:
    execution_id: str
    state: EndState
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """`run`'s exit code (a released execution has not ended: it has none)."""
        return EXIT_CODES[self.state]


@dataclass(frozen=True)
class _Ending:
    state: FinalState
    error: str | None = None
    step_reason: str | None = None  # why still-running steps are cancelled
    failed_steps: list[str] | None = None


@dataclass
class ExecutionContext:
    """What a runner needs besides the store: the definition, the context, where steps run
    and how values are masked."""

    execution_id: str
    definition: WorkflowDefinition
    context: dict[str, Any]
    workdir: Path
    redactor: SecretRedactor
    children: ChildRunner | None = None  # runs its sub-workflow steps' child executions


class ExecutionRunner:
    def __init__(
        self,
        *,
        store: AsyncStore,
        lease: Lease,
        run: ExecutionContext,
        table: InstanceTable,
        executor: Executor,
        opening: Callable[[float], Sequence[WriteOp]],
        lease_seconds: float,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.run_info = run
        self.table = table
        self.executor = executor
        # `ax worker` sets it: an execution only people can move on is let go (`_release`)
        self.release_when_gates_wait = False
        self.lease_seconds = lease_seconds
        self.on_commit = on_commit
        self._ops: list[WriteOp] = []
        self._tasks: dict[str, asyncio.Task[AttemptOutcome]] = {}
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._finished: list[AttemptOutcome] = []
        self._retries_due: list[str] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._due: set[str] = set()
        self._control: ControlRequest | None = None
        self._cancel_reason: str | None = None
        self._timed_out = False
        self._pausing = False
        self._fatal: str | None = None  # a step failure that ends the run now
        self._cel_values: dict[str, Any] = {}  # settled steps as CEL values (expressions)
        self._cel_context_value: Any = None
        self._wake = asyncio.Event()
        self._started = time.time()
        self._opening = opening  # the transition that begins (or resumes) the run
        # The steps that wait for a person, and those that run a child execution.
        self._gates = GateWatch(
            store, run.execution_id, table, do=self._do, ended=self._ended, wake=self._wake.set
        )
        self._children = ChildSteps(
            run,
            table,
            do=self._do,
            report=self._report,
            fail=self._record_failure,
            ended=self._ended,
            pause=self._begin_pause,
        )

    @property
    def execution_id(self) -> str:
        return self.run_info.execution_id

    # ---- public ----

    def request_cancel(self, reason: str) -> None:
        """Cancel from inside this process (SIGINT/SIGTERM handlers)."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._wake.set()

    def request_pause(self) -> None:
        """Pause from inside this process (a parent pausing its running children)."""
        self._note_control("pause")
        self._wake.set()

    async def run(self) -> ExecutionOutcome:
        self._loop = asyncio.get_running_loop()
        self._started = time.time()
        self._do(self._opening(self._started))
        config = self.run_info.definition.config
        self._arm("control", CONTROL_POLL_S, gates_only=GATES_ONLY_POLL_S)
        self._arm("heartbeat", heartbeat_interval(self.lease_seconds))
        self._arm("checkpoint", config.checkpoint_interval / 1000)
        if config.timeout:
            self._timers["timeout"] = self._loop.call_later(
                config.timeout / 1000, self._on_workflow_timeout
            )
        self._first_turn_checks()
        self._arm_waiting_retries(self._started)
        try:
            if self.table.waiting:
                await self._gates.rearm(until=self.lease.expires_at)
            outcome = await self._turn()
            while outcome is None:
                if not self._wake.is_set():
                    await self._wake.wait()
                self._wake.clear()
                outcome = await self._turn()
            return outcome
        except StoreFullError as exc:
            await self._abort()
            raise StoreFullError(
                f"{exc}; execution {self.execution_id} stopped there: free some space, then "
                f"continue it with `ax workflow resume {self.execution_id}` (or `ax workflow "
                "recover`)"
            ) from exc
        except BaseException:
            await self._abort()
            raise
        finally:
            for handle in self._timers.values():
                handle.cancel()
            self._gates.close()

    # ---- one loop turn: drain -> decide -> commit -> launch ----

    async def _turn(self) -> ExecutionOutcome | None:
        now = time.time()
        # drain
        finished, self._finished = self._finished, []
        retries, self._retries_due = self._retries_due, []
        if self._due:
            await self._on_timers(now)
        if self._gates.due:
            await self._gates.decide(now, until=self.lease.expires_at)
        # decide
        for outcome in finished:
            self._record(outcome, now)
        if not self._pausing and (retries or self.table.may_start()):
            # Ask the store, not only the 100 ms poll: a pause or cancel recorded before this
            # moment must never be followed by a new step.
            self._note_control(
                await self.store.control_request(self.execution_id, until=self.lease.expires_at)
            )
        ending = self._stop_requested()
        if ending is None and self._control == "pause":
            self._begin_pause()
        attempts: list[Attempt] = []
        if ending is None and not self._pausing:
            attempts = self._start(retries, now)
            ending = self._stop_requested()  # a prompt that could not render
        if (
            ending is None
            and not attempts
            and not self._tasks
            and not self.table.holding
            and (self._pausing or not self.table.waiting)  # a gate waiting keeps it alive
        ):
            ending = self._idle_ending()
        if ending is None and self.release_when_gates_wait and self._only_people_can_act(attempts):
            return await self._release()
        if ending is not None:
            return await self._end(ending)
        # commit, then launch what the committed changes unlocked
        await self._commit()
        for index, attempt in enumerate(attempts):
            if index and index % LAUNCH_BATCH == 0:
                # Let the loop run the attempts launched so far (their first steps run in
                # one loop turn) and its timers: 500 steps started together would otherwise
                # hold the loop for tens of milliseconds in a single turn (16 rather than
                # 64 at a time: the first turn of 500 HTTP steps lagged 15 ms, not 20-26).
                await asyncio.sleep(0)
            self._launch(attempt)
        if self._children.due:
            for key, child in self._children.launch(pausing=self._pausing):
                self._tasks[key] = self._loop.create_task(child)
        return None

    def _record(self, outcome: AttemptOutcome, now: float) -> None:
        """A finished attempt becomes a transition (stale outcomes are ignored)."""
        key = outcome.step_key
        record = self.table.records.get(key)
        if record is None or record.state != "running" or record.attempt != outcome.attempt:
            return
        self._tasks.pop(key, None)
        if type(outcome) is ChildOutcome:
            self._children.record(record, outcome)
            return
        at = outcome.finished_at
        if outcome.result is not None:
            stored = as_stored(outcome.result.output, self.run_info.redactor)
            self._do(
                transitions.succeed(record, outcome.result, at, output=stored, cache=outcome.cache)
            )
            self._ended(key, None, at)
            return
        error = outcome.error or StepError("provider_error", "attempt failed without an error")
        self._record_failure(record, error, at)

    def _record_failure(self, record: StepInstanceRecord, error: StepError, at: float) -> None:
        plan = self.table.plan(record)
        failure = transitions.fail(record, plan, error, at, pausing=self._pausing)
        self._do(failure.ops)
        if failure.retry_in_s is not None:
            key = record.key
            self._retry_timers[key] = self._loop.call_later(
                failure.retry_in_s, self._on_retry_due, key
            )
        if failure.final:
            self._ended(record.key, error, at)

    def _ended(self, key: str, error: StepError | None, at: float) -> None:
        """An instance ended for good, completed (`error` None) or failed with no retry
        left: a forEach item settles or fails its step; a failed step that is not
        optional has a final failure's usual effects."""
        record = self.table[key]
        if record.parent_key is not None:
            if error is None:
                self._item_settled(record.parent_key, at)
            else:
                self._item_failed(record, at)
        elif error is not None and not self.table.plan(record).spec.optional:
            self._failed_for_good(key, error, at)

    def _failed_for_good(self, key: str, error: StepError, at: float) -> None:
        """A non-optional step failed for good: its downstream is skipped (continueOnError),
        or the run ends."""
        if self.run_info.definition.config.continue_on_error:
            for skipped in self.table.downstream_pending(key):
                self._do(transitions.skip(skipped, key, at))
        elif self._fatal is None:
            self._fatal = f"step '{key}' failed: {error.kind}: {error.message}"

    def _start(self, retries: list[str], now: float) -> list[Attempt]:
        """Begin the due retries, then every ready instance a slot allows."""
        attempts: list[Attempt] = []
        for key in retries:
            if self._retry_timers.pop(key, None) is None:
                continue
            record = self.table[key]
            if record.state == "pending" and record.retry_at is not None:
                self._begin(key, now, attempts)
        table = self.table
        while self._fatal is None:
            startable = table.take_startable()
            if not startable:
                break
            for key in startable:
                record = table[key]
                if record.parent_key is not None:
                    self._begin(key, now, attempts)  # a forEach item
                elif self._condition_holds(key, now):
                    if table.plan(record).for_each is not None:
                        self._fan_out(key, now)
                    else:
                        self._begin(key, now, attempts)
                if self._fatal is not None:
                    break
        return attempts

    # ---- forEach ----

    def _fan_out(self, key: str, now: float) -> None:
        """A ready forEach step: evaluate its items once (a list of at most
        `config.maxForEachItems`, else `expression_error`) and create an instance each."""
        record = self.table[key]
        plan = self.table.plan(record)
        for_each = plan.for_each
        assert for_each is not None
        expression = for_each.items
        try:
            items = self._evaluate(expression)
            if not isinstance(items, list):
                raise StepError(
                    "expression_error",
                    f"forEach.items: {expression.source} gave {type(items).__name__}, not a list",
                )
            if len(items) > for_each.max_items:
                raise StepError(
                    "expression_error",
                    f"forEach.items: {len(items)} items, more than config.maxForEachItems "
                    f"({for_each.max_items})",
                )
        except StepError as error:
            self._fail_unstarted(record, plan, error, now)
            return
        items = as_stored(items, self.run_info.redactor)
        self._do(transitions.fan_out(record, plan, items, now))

    def _item_settled(self, parent_key: str, now: float) -> None:
        """An item completed: when all have, so has their step (outputs by index)."""
        parent = self.table[parent_key]
        if parent.state == "running" and self.table.items_settled(parent_key):
            outputs = [item.output for item in self.table.items_of(parent_key)]
            self._do(transitions.complete_items(parent, outputs, now))

    def _item_failed(self, item: StepInstanceRecord, now: float) -> None:
        """An item failed for good: its step fails now, its items that have not started
        never will (those running finish), and the step's failure has its usual effects."""
        parent_key = item.parent_key
        assert parent_key is not None
        parent = self.table[parent_key]
        if parent.state != "running":
            return  # an item before it already failed the step
        plan = self.table.plan(parent)
        self._do(transitions.fail_items(parent, plan, item, now))
        reason = f"not started: {item.key} failed"
        for sibling in self.table.items_of(parent_key):
            if sibling.state in ("pending", "waiting"):  # waiting: a gate, undecided
                timer = self._retry_timers.pop(sibling.key, None)
                if timer is not None:
                    timer.cancel()
                self._do(transitions.cancel(sibling, reason, now))
        if not plan.spec.optional:
            failed = self.table[parent_key]
            error = StepError(
                failed.error_kind or "provider_error",  # type: ignore[arg-type]
                failed.error_message or "an item failed",
            )
            self._failed_for_good(parent_key, error, now)

    def _condition_holds(self, key: str, now: float) -> bool:
        """A ready step's `if`: true, it starts; false, it is skipped (its dependents may now
        be ready); an error or a non-bool fails it (`expression_error`)."""
        record = self.table[key]
        plan = self.table.plan(record)
        condition = plan.condition
        if condition is None:
            return True
        try:
            value = self._evaluate(condition)
            if not isinstance(value, bool):
                raise StepError(
                    "expression_error",
                    f"if: {condition.source} gave {type(value).__name__} {value!r}, not a bool",
                )
        except StepError as error:
            self._fail_unstarted(record, plan, error, now)
            return False
        if not value:
            self._do(transitions.skip_by_condition(record, condition.source, now))
        return value

    def _fail_unstarted(
        self, record: StepInstanceRecord, plan: StepPlan, error: StepError, now: float
    ) -> None:
        """A ready step whose `if` or `forEach.items` failed: it fails with no attempt, with
        a step failure's usual effects unless it is optional."""
        self._do(transitions.fail_before_start(record, plan, error, now))
        if not plan.spec.optional:
            self._failed_for_good(record.key, error, now)

    def _evaluate(self, expression: Expression) -> Any:
        return expression.evaluate(self._cel_context(), self._cel_steps(expression.steps))

    def _cel_context(self) -> Any:
        """The execution context as a CEL value, built on first use."""
        if self._cel_context_value is None:
            self._cel_context_value = cel_value(self.run_info.context)
        return self._cel_context_value

    def _cel_steps(self, keys: frozenset[str]) -> dict[str, Any]:
        """`steps.<key>` for an expression: each settled step's value is built once."""
        values = self._cel_values
        for key in keys:
            if key not in values:
                record = self.table[key]
                values[key] = step_value(record.output, record.state)
        return {key: values[key] for key in keys}

    def _begin(self, key: str, now: float, attempts: list[Attempt]) -> None:
        """Start a ready instance the way its kind asks: an agent step's next attempt, an
        approval gate's wait, or a sub-workflow's child execution."""
        kind = self.table.plan(self.table[key]).spec.kind
        if kind == "approval":
            self._begin_gate(key, now)
        elif kind == "workflow":
            record = self.table[key]
            self._children.begin(key, now, local=self._item_names(record, self.table.plan(record)))
        else:
            self._begin_agent(key, now, attempts)

    def _begin_gate(self, key: str, now: float) -> None:
        """An approval gate is ready: it waits for a decision, its message rendered like a
        prompt (a placeholder that cannot render fails it: `template_error`)."""
        record = self.table[key]
        plan = self.table.plan(record)
        approval = plan.spec.approval
        assert approval is not None
        try:
            message = render(
                approval.message,
                context=self.run_info.context,
                step_outputs=self.table.outputs,
                empty_steps=self.table.empty,
                local=self._item_names(record, plan),
            )
        except StepError as error:
            self._fail_unstarted(record, plan, error, now)
            return
        message = as_stored(message, self.run_info.redactor)
        self._do(approvals.request_approval(record, approval, message=message, now=now))
        if approval.timeout_ms is not None:
            self._gates.watch(key, now + approval.timeout_ms / 1000)

    def _begin_agent(self, key: str, now: float, attempts: list[Attempt]) -> None:
        """Start the next attempt of `key`; an agent template or a prompt that cannot render
        fails the attempt at once (`template_error`)."""
        record = self.table[key]
        plan = self.table.plan(record)
        run = self.run_info
        agent_name: str | None = None
        prompt: str | None = None
        problem: StepError | None = None
        local = self._item_names(record, plan)
        try:
            agent_name = self._agent_of(plan, local)
            prompt = render(
                plan.spec.prompt or "",
                context=run.context,
                step_outputs=self.table.outputs,
                empty_steps=self.table.empty,
                local=local,
            )
        except StepError as error:
            problem = error
        self._do(transitions.start(record, plan, now, agent=agent_name, prompt=prompt))
        started = self.table[key]
        if problem is not None or agent_name is None:
            self._record_failure(started, problem or StepError("template_error", "no agent"), now)
            return
        assert prompt is not None  # rendered, since nothing failed
        call = ProviderCall(
            execution_id=run.execution_id,
            step_key=key,
            attempt=started.attempt,
            agent_name=agent_name,
            agent=plan.agents[agent_name],
            prompt=prompt,
            context=run.context,
            timeout_s=plan.timeout_s(agent_name),
            output_schema=plan.spec.output_schema,
            workdir=run.workdir,
        )
        attempts.append(Attempt(call, now, plan.validator, plan.cache))

    def _item_names(self, record: StepInstanceRecord, plan: StepPlan) -> dict[str, Any] | None:
        """For a forEach item: the item (under its `as` name) and its index."""
        if record.parent_key is None or plan.for_each is None or record.item_index is None:
            return None
        items = self.table[record.parent_key].items or []
        return {plan.for_each.name: items[record.item_index], "index": record.item_index}

    def _agent_of(self, plan: StepPlan, local: dict[str, Any] | None) -> str:
        """The agent this attempt uses: the step's, or what its agent template renders to,
        which must be one of its `agentChoices`."""
        assert plan.agent_name is not None  # an agent step
        if not plan.spec.agent_is_template:
            return plan.agent_name
        name = render(
            plan.agent_name,
            context=self.run_info.context,
            step_outputs=self.table.outputs,
            empty_steps=self.table.empty,
            local=local,
        ).strip()
        if name not in plan.agents:
            choices = ", ".join(plan.agents)
            raise StepError(
                "template_error",
                f"agent {plan.agent_name} rendered {name!r}, which is not one of its "
                f"agentChoices ({choices})",
            )
        return name

    def _launch(self, attempt: Attempt) -> None:
        task = self._loop.create_task(self._attempt(attempt))
        self._tasks[attempt.call.step_key] = task

    async def _attempt(self, attempt: Attempt) -> AttemptOutcome:
        """One attempt; its outcome is queued and the loop woken from inside the task (a
        done-callback would cost one more event-loop turn per step). A cancelled attempt
        queues nothing: the ending path records it."""
        outcome = await self.executor.execute(attempt)
        self._report(outcome)
        return outcome

    def _report(self, outcome: AttemptOutcome) -> None:
        """Queue a finished attempt's (or child's) outcome for the next turn."""
        self._finished.append(outcome)
        self._wake.set()

    def _do(self, ops: Sequence[WriteOp]) -> None:
        """Apply a transition's operations in memory and queue them for the next commit."""
        self.table.apply_ops(ops)
        self._ops.extend(ops)

    async def _commit(self) -> None:
        ops, self._ops = self._ops, []
        if ops:
            await self.store.write(self.lease, ops)
            if self.on_commit is not None:
                self.on_commit(ops)

    # ---- deciding to stop ----

    def _first_turn_checks(self) -> None:
        """A resumed execution may already hold a failure that ends it, or instances that
        a failure upstream left unable to run."""
        now = time.time()
        failed = self.table.failed_for_good()
        if failed and not self.run_info.definition.config.continue_on_error:
            first = failed[0]
            self._fatal = f"step '{first.key}' failed: {first.error_kind}: {first.error_message}"
        for record, culprit in self.table.blocked_pending():
            self._do(transitions.skip(record, culprit, now))
        for record in list(self.table):  # a forEach whose items all settled (robustness)
            if record.state == "running" and record.items is not None:
                failed = [i for i in self.table.items_of(record.key) if i.state != "completed"]
                if failed and self.table.items_settled(record.key):
                    self._item_failed(failed[0], now)
                else:
                    self._item_settled(record.key, now)

    def _stop_requested(self) -> _Ending | None:
        if (
            self._control is None
            and self._cancel_reason is None
            and self._fatal is None
            and not self._timed_out
        ):
            return None
        if self._cancel_reason is None and self._control == "cancel":
            self._cancel_reason = "cancelled by request"
        if self._cancel_reason is not None:
            return _Ending("cancelled", self._cancel_reason, "workflow cancelled")
        if self._timed_out:
            timeout_ms = self.run_info.definition.config.timeout
            return _Ending("failed", f"workflow timed out after {timeout_ms} ms")
        if self._fatal is not None:
            return _Ending("failed", self._fatal)
        return None

    def _idle_ending(self) -> _Ending:
        """Nothing runs and nothing can start: completed, failed, or paused."""
        failed = self.table.failed_for_good()
        if failed:
            first = failed[0]
            error = f"step '{first.key}' failed: {first.error_kind}: {first.error_message}"
            return _Ending("failed", error, failed_steps=[r.key for r in failed])
        if self.table.is_finished():
            return _Ending("completed")
        if self._pausing:
            return _Ending("paused")
        unfinished = ", ".join(self.table.unfinished_keys())
        return _Ending("failed", f"no step can start: {unfinished}")

    def _begin_pause(self) -> None:
        """Start nothing new; steps waiting to retry give their slot back (they retry on
        resume); running attempts finish and keep their results."""
        if self._pausing:
            return
        self._pausing = True
        self._children.pause()  # children pause before their parent
        for key, handle in self._retry_timers.items():
            handle.cancel()
            self._do(transitions.release_retry(self.table[key]))
        self._retry_timers.clear()

    # ---- the one ending path ----

    async def _end(self, ending: _Ending) -> ExecutionOutcome:
        why = ending.step_reason or ending.error or ending.state
        self._children.parent_ends(
            f"its parent execution {self.execution_id} {ending.state} ({why})"
        )
        running = list(self._tasks.values())
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        now = time.time()
        for outcome in self._finished:  # attempts that ended before they could be stopped
            if outcome.result is not None:
                self._record(outcome, now)
            elif (
                type(outcome) is ChildOutcome
                and outcome.state == "paused"
                and ending.state != "paused"
            ):
                self._children.stop_with_parent(outcome.step_key, outcome.child_execution_id)
        self._finished.clear()
        self._tasks.clear()
        for handle in self._retry_timers.values():
            handle.cancel()
        self._retry_timers.clear()
        records = list(self.table)
        run = self.run_info
        if ending.state == "completed":
            duration = int((now - self._started) * 1000)
            graph = {key: plan.spec.dependencies for key, plan in self.table.plans.items()}
            ops = transitions.complete(records, duration_ms=duration, dependencies=graph, now=now)
        elif ending.state == "paused":
            ops = transitions.pause(records, context=run.context, now=now)
        elif ending.state == "cancelled":
            reason = ending.error or "cancelled"
            ops = transitions.cancel_execution(
                records, reason=reason, now=now, step_reason=ending.step_reason or reason
            )
        else:
            error = ending.error or "failed"
            ops = transitions.fail_execution(
                records,
                error=error,
                now=now,
                failed_steps=ending.failed_steps,
                step_reason=ending.step_reason,
            )
        self._do(ops)
        await self._commit()
        await self._children.stop_unstarted()
        await self.store.release_lease(self.lease)
        return ExecutionOutcome(self.execution_id, ending.state, ending.error)

    async def _abort(self) -> None:
        """Lease lost or an unexpected error: stop every attempt, write nothing."""
        self._children.abort()
        for handle in self._retry_timers.values():
            handle.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # ---- timers and callbacks ----

    def _arm(self, name: str, interval: float, *, gates_only: float | None = None) -> None:
        """A timer due every `interval` (every `gates_only` while only gates wait)."""

        def tick() -> None:
            self._due.add(name)
            self._wake.set()
            delay = interval
            if gates_only is not None and self._only_gates_wait():
                delay = gates_only
            self._timers[name] = self._loop.call_later(delay, tick)

        self._timers[name] = self._loop.call_later(interval, tick)

    async def _on_timers(self, now: float) -> None:
        due, self._due = self._due, set()
        if "heartbeat" in due:
            self.lease, control = await self.store.renew_lease(self.lease, self.lease_seconds)
            self._note_control(control)
        if "control" in due:
            record = await self.store.get_execution(self.execution_id, until=self.lease.expires_at)
            if record.lease_epoch != self.lease.epoch or record.lease_owner != self.lease.owner:
                raise LeaseLostError(
                    f"execution {self.execution_id} was taken over by "
                    f"{record.lease_owner} (epoch {record.lease_epoch}); this runner stops"
                )
            self._note_control(record.control_request)
        if "control" in due:
            self._gates.look_again()
        if "checkpoint" in due and not self._pausing and not self._only_gates_wait():
            self._do(
                transitions.checkpoint(
                    self.table,
                    state="executing",
                    context=self.run_info.context,
                    created_by="automatic",
                    label="periodic",
                    now=now,
                )
            )

    def _note_control(self, control: ControlRequest | None) -> None:
        if control == "cancel" or (control == "pause" and self._control is None):
            self._control = control

    def _only_people_can_act(self, attempts: list[Attempt]) -> bool:
        """Nothing runs, waits to retry or can start, and no gate's deadline has come:
        only approval gates wait, for people."""
        deadline = self._gates.next_deadline()
        return (
            not attempts
            and not self._pausing
            and not self._retry_timers
            and not self._retries_due
            and not self._gates.due
            and self._only_gates_wait()
            and not self.table.may_start()
            and (deadline is None or deadline > time.time() + RELEASE_MARGIN_S)
        )

    async def _release(self) -> ExecutionOutcome:
        """Let go of an execution whose only work left is waiting for people: everything
        is committed with the time until which nothing can happen without a decision (the
        gates' earliest deadline), the lease released, and the state stays `executing`;
        the workers take it up again once a gate is decided or that time comes."""
        self._do(transitions.release_to_people(self._gates.next_deadline(), time.time()))
        await self._commit()
        await self.store.release_lease(self.lease)
        return ExecutionOutcome(self.execution_id, "released")

    def _only_gates_wait(self) -> bool:
        return self._gates.only_gates_wait(running=bool(self._tasks))

    def _on_retry_due(self, key: str) -> None:
        self._retries_due.append(key)
        self._wake.set()

    def _on_workflow_timeout(self) -> None:
        self._timed_out = True
        self._wake.set()

    def _arm_waiting_retries(self, now: float) -> None:
        """A resumed execution whose runner died during a retry's backoff: the retry comes
        when its backoff ends, as it would have."""
        for record in self.table:
            if record.state == "pending" and record.retry_at is not None:
                delay = max(0.0, record.retry_at - now)
                self._retry_timers[record.key] = self._loop.call_later(
                    delay, self._on_retry_due, record.key
                )
