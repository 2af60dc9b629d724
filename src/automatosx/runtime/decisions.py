"""What an execution does next, decided without I/O: the one turn function both ways of
running an execution share.

`Decisions` holds an execution's step instances (`InstanceTable`) and what its run has
decided so far (a fatal failure, a pause begun, a cancel or pause asked for, the workflow
timeout). Given what happened (an attempt's outcome, a gate's decision, retries due), it
builds the transitions that follow and the attempts that start now: the operations go into
the table at once and into `take_ops()` for the caller's one durable write. Nothing here
waits, reads the store or keeps time; what it needs from its host goes through `TurnHost`:

- `ExecutionRunner` (one process) turns retries and gate deadlines into timers, sub-workflow
  steps into child runners, and commits each turn's operations under its lease;
- `worker.turn` (`ax worker`) runs a turn inside the transaction that records an attempt's
  answer, so the decision what is ready now commits with the result that made it ready,
  and the timers become jobs scheduled for when they are due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from automatosx.agents.base import ProviderCall
from automatosx.definition.expressions import Expression, cel_value, step_value
from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.templates import render
from automatosx.errors import StepError
from automatosx.runtime import approvals, transitions
from automatosx.runtime.children import ChildOutcome, ChildRunner
from automatosx.runtime.executor import Attempt
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.plans import StepPlan
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.secrets import SecretRedactor
from automatosx.store.codec import as_stored
from automatosx.store.records import ApprovalRecord, ControlRequest, StepInstanceRecord, WriteOp

FinalState = Literal["completed", "failed", "cancelled", "paused"]


@dataclass(frozen=True)
class Ending:
    """How the execution ends, and why."""

    state: FinalState
    error: str | None = None
    step_reason: str | None = None  # why still-running steps are cancelled
    failed_steps: list[str] | None = None


@dataclass
class ExecutionContext:
    """What running an execution needs besides the store: the definition, the context,
    where steps run and how values are masked."""

    execution_id: str
    definition: WorkflowDefinition
    context: dict[str, Any]
    workdir: Path
    redactor: SecretRedactor
    children: ChildRunner | None = None  # runs its sub-workflow steps' child executions


class TurnHost(Protocol):
    """What a turn needs done outside it, by whoever runs the execution."""

    def retry_later(self, key: str, at: float) -> None:
        """Begin `key`'s next attempt when its backoff ends (`at`, absolute)."""

    def watch_gate(self, key: str, deadline: float) -> None:
        """Come back when the gate `key` reaches its deadline (absolute)."""

    def begin_child(self, key: str, now: float, local: dict[str, Any] | None) -> None:
        """Start the sub-workflow step `key`'s child execution."""

    def record_child(self, record: StepInstanceRecord, outcome: ChildOutcome) -> None:
        """A sub-workflow step's child ended (or paused)."""

    def pause_children(self) -> None:
        """The run begins to pause: its running children pause first."""


class Decisions:
    """One execution's decisions: see the module docstring."""

    def __init__(self, table: InstanceTable, run: ExecutionContext, host: TurnHost) -> None:
        self.table = table
        self.run = run
        self.definition = run.definition
        self.context = run.context
        self.redactor = run.redactor
        self.execution_id = run.execution_id
        self.host = host
        self.fatal: str | None = None  # a step failure that ends the run now
        self.pausing = False
        self.control: ControlRequest | None = None
        self.cancel_reason: str | None = None
        self.timed_out = False
        self._ops: list[WriteOp] = []
        self._cel_values: dict[str, Any] = {}  # settled steps as CEL values (expressions)
        self._cel_context_value: Any = None

    # ---- the operations of this turn ----

    def do(self, ops: Sequence[WriteOp]) -> None:
        """Apply a transition's operations in memory and queue them for the next write."""
        self.table.apply_ops(ops)
        self._ops.extend(ops)

    def take_ops(self) -> list[WriteOp]:
        ops, self._ops = self._ops, []
        return ops

    # ---- what happened ----

    def record(self, outcome: AttemptOutcome, now: float) -> bool:
        """A finished attempt (or child) becomes a transition; False when it is stale (its
        instance no longer waits for that attempt) and changes nothing."""
        key = outcome.step_key
        record = self.table.records.get(key)
        if record is None or record.state != "running" or record.attempt != outcome.attempt:
            return False
        if type(outcome) is ChildOutcome:
            self.host.record_child(record, outcome)
            return True
        at = outcome.finished_at
        if outcome.result is not None:
            stored = as_stored(outcome.result.output, self.redactor)
            self.do(
                transitions.succeed(record, outcome.result, at, output=stored, cache=outcome.cache)
            )
            self.ended(key, None, at)
            return True
        error = outcome.error or StepError("provider_error", "attempt failed without an error")
        self.record_failure(record, error, at)
        return True

    def record_failure(self, record: StepInstanceRecord, error: StepError, at: float) -> None:
        plan = self.table.plan(record)
        failure = transitions.fail(record, plan, error, at, pausing=self.pausing)
        self.do(failure.ops)
        if failure.retry_in_s is not None:
            self.host.retry_later(record.key, at + failure.retry_in_s)
        if failure.final:
            self.ended(record.key, error, at)

    def decide_gate(self, approval: ApprovalRecord, now: float) -> None:
        """A recorded decision ends its gate: approved, it completes (its dependents may
        start); rejected, it fails for good with a final failure's usual effects."""
        if approval.step_key not in self.table.waiting:
            return  # an item failed before may have cancelled it
        record = self.table[approval.step_key]
        optional = self.table.plan(record).spec.optional
        ops, error = approvals.apply_decision(record, approval, optional=optional, now=now)
        self.do(ops)
        self.ended(record.key, error, now)

    def ended(self, key: str, error: StepError | None, at: float) -> None:
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

    def note_control(self, control: ControlRequest | None) -> None:
        if control == "cancel" or (control == "pause" and self.control is None):
            self.control = control

    def _failed_for_good(self, key: str, error: StepError, at: float) -> None:
        """A non-optional step failed for good: its downstream is skipped (continueOnError),
        or the run ends."""
        if self.definition.config.continue_on_error:
            for skipped in self.table.downstream_pending(key):
                self.do(transitions.skip(skipped, key, at))
        elif self.fatal is None:
            self.fatal = f"step '{key}' failed: {error.kind}: {error.message}"

    # ---- what starts ----

    def start(self, retries: Iterable[str], now: float) -> list[Attempt]:
        """Begin the due retries (still waiting for their backoff), then every ready
        instance a slot allows."""
        attempts: list[Attempt] = []
        for key in retries:
            record = self.table.records.get(key)
            if record is not None and record.state == "pending" and record.retry_at is not None:
                self._begin(key, now, attempts)
        table = self.table
        while self.fatal is None:
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
                if self.fatal is not None:
                    break
        return attempts

    def waiting_retries(self) -> list[StepInstanceRecord]:
        """Instances waiting out a retry's backoff."""
        return [r for r in self.table if r.state == "pending" and r.retry_at is not None]

    def due_retries(self, now: float) -> list[str]:
        """The keys whose backoff has ended by `now`."""
        return [
            r.key for r in self.waiting_retries() if r.retry_at is not None and r.retry_at <= now
        ]

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
            self.fail_unstarted(record, plan, error, now)
            return
        items = as_stored(items, self.redactor)
        self.do(transitions.fan_out(record, plan, items, now))

    def _item_settled(self, parent_key: str, now: float) -> None:
        """An item completed: when all have, so has their step (outputs by index)."""
        parent = self.table[parent_key]
        if parent.state == "running" and self.table.items_settled(parent_key):
            outputs = [item.output for item in self.table.items_of(parent_key)]
            self.do(transitions.complete_items(parent, outputs, now))

    def _item_failed(self, item: StepInstanceRecord, now: float) -> None:
        """An item failed for good: its step fails now, its items that have not started
        never will (those running finish), and the step's failure has its usual effects."""
        parent_key = item.parent_key
        assert parent_key is not None
        parent = self.table[parent_key]
        if parent.state != "running":
            return  # an item before it already failed the step
        plan = self.table.plan(parent)
        self.do(transitions.fail_items(parent, plan, item, now))
        reason = f"not started: {item.key} failed"
        for sibling in self.table.items_of(parent_key):
            if sibling.state in ("pending", "waiting"):  # waiting: a gate, undecided
                self.do(transitions.cancel(sibling, reason, now))
        if not plan.spec.optional:
            failed = self.table[parent_key]
            error = StepError(
                failed.error_kind or "provider_error",  # type: ignore[arg-type]
                failed.error_message or "an item failed",
            )
            self._failed_for_good(parent_key, error, now)

    # ---- conditions and expressions ----

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
            self.fail_unstarted(record, plan, error, now)
            return False
        if not value:
            self.do(transitions.skip_by_condition(record, condition.source, now))
        return value

    def fail_unstarted(
        self, record: StepInstanceRecord, plan: StepPlan, error: StepError, now: float
    ) -> None:
        """A ready step whose `if`, `forEach.items`, gate message or child could not be had:
        it fails with no attempt, with a step failure's usual effects unless optional."""
        self.do(transitions.fail_before_start(record, plan, error, now))
        if not plan.spec.optional:
            self._failed_for_good(record.key, error, now)

    def _evaluate(self, expression: Expression) -> Any:
        return expression.evaluate(self._cel_context(), self._cel_steps(expression.steps))

    def _cel_context(self) -> Any:
        """The execution context as a CEL value, built on first use."""
        if self._cel_context_value is None:
            self._cel_context_value = cel_value(self.context)
        return self._cel_context_value

    def _cel_steps(self, keys: frozenset[str]) -> dict[str, Any]:
        """`steps.<key>` for an expression: each settled step's value is built once."""
        values = self._cel_values
        for key in keys:
            if key not in values:
                record = self.table[key]
                values[key] = step_value(record.output, record.state)
        return {key: values[key] for key in keys}

    # ---- beginning an instance ----

    def _begin(self, key: str, now: float, attempts: list[Attempt]) -> None:
        """Start a ready instance the way its kind asks: an agent step's next attempt, an
        approval gate's wait, or a sub-workflow's child execution."""
        record = self.table[key]
        plan = self.table.plan(record)
        kind = plan.spec.kind
        if kind == "approval":
            self._begin_gate(key, now)
        elif kind == "workflow":
            self.host.begin_child(key, now, self.item_names(record, plan))
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
                context=self.context,
                step_outputs=self.table.outputs,
                empty_steps=self.table.empty,
                local=self.item_names(record, plan),
            )
        except StepError as error:
            self.fail_unstarted(record, plan, error, now)
            return
        message = as_stored(message, self.redactor)
        self.do(approvals.request_approval(record, approval, message=message, now=now))
        if approval.timeout_ms is not None:
            self.host.watch_gate(key, now + approval.timeout_ms / 1000)

    def _begin_agent(self, key: str, now: float, attempts: list[Attempt]) -> None:
        """Start the next attempt of `key`; an agent template or a prompt that cannot render
        fails the attempt at once (`template_error`)."""
        record = self.table[key]
        plan = self.table.plan(record)
        agent_name: str | None = None
        prompt: str | None = None
        problem: StepError | None = None
        local = self.item_names(record, plan)
        try:
            agent_name = self._agent_of(plan, local)
            prompt = render(
                plan.spec.prompt or "",
                context=self.context,
                step_outputs=self.table.outputs,
                empty_steps=self.table.empty,
                local=local,
            )
        except StepError as error:
            problem = error
        self.do(transitions.start(record, plan, now, agent=agent_name, prompt=prompt))
        started = self.table[key]
        if problem is not None or agent_name is None:
            self.record_failure(started, problem or StepError("template_error", "no agent"), now)
            return
        assert prompt is not None  # rendered, since nothing failed
        call = ProviderCall(
            execution_id=self.execution_id,
            step_key=key,
            attempt=started.attempt,
            agent_name=agent_name,
            agent=plan.agents[agent_name],
            prompt=prompt,
            context=self.context,
            timeout_s=plan.timeout_s(agent_name),
            output_schema=plan.spec.output_schema,
            workdir=self.run.workdir,
        )
        attempts.append(Attempt(call, now, plan.validator, plan.cache))

    def item_names(self, record: StepInstanceRecord, plan: StepPlan) -> dict[str, Any] | None:
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
            context=self.context,
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

    # ---- deciding to stop ----

    def first_turn_checks(self, now: float) -> None:
        """A resumed execution may already hold a failure that ends it, or instances that
        a failure upstream left unable to run."""
        failed = self.table.failed_for_good()
        if failed and not self.definition.config.continue_on_error:
            first = failed[0]
            self.fatal = f"step '{first.key}' failed: {first.error_kind}: {first.error_message}"
        for record, culprit in self.table.blocked_pending():
            self.do(transitions.skip(record, culprit, now))
        for record in list(self.table):  # a forEach whose items all settled (robustness)
            if record.state == "running" and record.items is not None:
                failed = [i for i in self.table.items_of(record.key) if i.state != "completed"]
                if failed and self.table.items_settled(record.key):
                    self._item_failed(failed[0], now)
                else:
                    self._item_settled(record.key, now)

    def stop_requested(self) -> Ending | None:
        """A cancel, the workflow timeout or a fatal failure: the run ends now."""
        if (
            self.control is None
            and self.cancel_reason is None
            and self.fatal is None
            and not self.timed_out
        ):
            return None
        if self.cancel_reason is None and self.control == "cancel":
            self.cancel_reason = "cancelled by request"
        if self.cancel_reason is not None:
            return Ending("cancelled", self.cancel_reason, "workflow cancelled")
        if self.timed_out:
            return Ending("failed", f"workflow timed out after {self.definition.config.timeout} ms")
        if self.fatal is not None:
            return Ending("failed", self.fatal)
        return None

    def idle_ending(self) -> Ending:
        """Nothing runs and nothing can start: completed, failed, or paused."""
        failed = self.table.failed_for_good()
        if failed:
            first = failed[0]
            error = f"step '{first.key}' failed: {first.error_kind}: {first.error_message}"
            return Ending("failed", error, failed_steps=[r.key for r in failed])
        if self.table.is_finished():
            return Ending("completed")
        if self.pausing:
            return Ending("paused")
        unfinished = ", ".join(self.table.unfinished_keys())
        return Ending("failed", f"no step can start: {unfinished}")

    def is_idle(self, attempts: Sequence[Attempt], *, running: bool) -> bool:
        """Nothing started, runs (`running`: attempts or children in flight) or holds a
        slot, and no gate waits that could still move the run on: it ends."""
        return (
            not attempts
            and not running
            and not self.table.holding
            and (self.pausing or not self.table.waiting)  # a gate waiting keeps it alive
        )

    def begin_pause(self) -> None:
        """Start nothing new; steps waiting to retry give their slot back (they retry on
        resume); running attempts finish and keep their results."""
        if self.pausing:
            return
        self.pausing = True
        self.host.pause_children()  # children pause before their parent
        for record in self.waiting_retries():
            self.do(transitions.release_retry(record))

    def periodic_checkpoint(self, now: float) -> None:
        """The snapshot a run writes every `checkpointInterval` while it works."""
        self.do(
            transitions.checkpoint(
                self.table,
                state="executing",
                context=self.context,
                created_by="automatic",
                label="periodic",
                now=now,
            )
        )

    def ending_ops(self, ending: Ending, *, started_at: float, now: float) -> list[WriteOp]:
        """The final write of the run: how it ended, for every instance and the execution."""
        records = list(self.table)
        if ending.state == "completed":
            duration = int((now - started_at) * 1000)
            graph = {key: plan.spec.dependencies for key, plan in self.table.plans.items()}
            return transitions.complete(records, duration_ms=duration, dependencies=graph, now=now)
        if ending.state == "paused":
            return transitions.pause(records, context=self.context, now=now)
        if ending.state == "cancelled":
            reason = ending.error or "cancelled"
            return transitions.cancel_execution(
                records, reason=reason, now=now, step_reason=ending.step_reason or reason
            )
        return transitions.fail_execution(
            records,
            error=ending.error or "failed",
            now=now,
            failed_steps=ending.failed_steps,
            step_reason=ending.step_reason,
        )
