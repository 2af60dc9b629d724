"""One turn of a submitted execution (`ax worker`, SPEC section 9): the scheduling decision,
taken in the transaction that records what caused it. No process drives a submitted
execution; whoever has something for it takes a turn:

- the worker that ran an attempt, with its answer (`answer`): the outcome is recorded and
  what it makes ready is started, in one commit;
- a turn job (`worker.turns`) for everything else: the execution's first turn after
  `submit`, a resume, a decision on a gate, a cancel or pause asked for, a child that
  ended, or a time that came (a retry's backoff, a gate's deadline, the workflow timeout;
  deferred with procrastinate's `scheduled_at`, `store.turns`).

A turn locks the execution's row, rebuilds its instances from the store, lets the turn
function (`decisions.Decisions`, the one `ax workflow run` uses) decide, and commits the
operations, the attempts it starts (each stored with its job), and the turns still due.
Turns are idempotent: one with nothing new to act on writes nothing, so a duplicate or a
late timer is harmless; a crash mid-turn commits nothing, and procrastinate runs the job
again. The turn is a pure function of the stored state, so any worker on any machine may
take the next one: there is no coordinator to lose.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from automatosx.errors import StepError
from automatosx.runtime import transitions
from automatosx.runtime.child_steps import ChildSteps
from automatosx.runtime.children import ChildOutcome
from automatosx.runtime.control import opening_of_new, prepared_as_stored
from automatosx.runtime.decisions import Decisions, Ending, ExecutionContext
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.lease import new_owner
from automatosx.runtime.recovery import recovered_instances
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.runtime.wire import attempt_queue, call_to_json
from automatosx.secrets import redactor_from_env
from automatosx.store.records import SetIdleUntil

if TYPE_CHECKING:
    from automatosx.runtime.executor import Attempt
    from automatosx.runtime.preparation import PreparedWorkflow
    from automatosx.store.base import Store
    from automatosx.store.records import ApprovalRecord, ExecutionRecord, StepInstanceRecord
    from automatosx.store.turns import TurnSession

# A step whose worker is lost this many times fails (`worker_lost`) instead of running
# again: one that kills whatever runs it (out of memory, a crash) would go round the
# workers for ever.
LOST_WORKERS_ALLOWED = 3
CLOCK_SLACK_S = 1.0  # a due time this near is scheduled again by each turn that sees it
PREPARED_KEPT = 64  # executions whose prepared workflow a process keeps (definitions never change)


@dataclass(frozen=True)
class Answer:
    """An attempt's outcome, from the worker that claimed its dispatch; or, with no
    outcome, word that the worker that ran it before went silent (SIGKILL, a lost
    machine): the attempt is closed as interrupted and the step runs again as its next
    attempt, as a resume would run it."""

    dispatch_id: str
    worker: str
    outcome: AttemptOutcome | None = None
    step_key: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class TurnResult:
    state: str  # the execution's state after the turn
    ended: bool = False  # this turn ended it (its trace may be sent)
    refused: bool = False  # the answer came from a worker that is no longer the claimant
    started: int = 0  # attempts dispatched


class PreparedCache:
    """Prepared workflows by execution (each execution keeps its own definition, so one
    prepared once stays right): a turn for every answer must not parse and compile the
    definition again."""

    def __init__(self, size: int = PREPARED_KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[str, PreparedWorkflow] = OrderedDict()

    def get(self, store: Store, execution: ExecutionRecord) -> PreparedWorkflow:
        prepared = self._kept.get(execution.id)
        if prepared is None:
            prepared = prepared_as_stored(store, execution)
            self._kept[execution.id] = prepared
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(execution.id)
        return prepared


_PREPARED = PreparedCache()
# When each execution's current run segment began (its first start, or its latest resume),
# by (execution, resume count): `config.timeout` counts from there, so time spent paused
# does not count. A process asks the store once per resume it has not seen.
_SEGMENTS: OrderedDict[tuple[str, int], float] = OrderedDict()


def take_turn(
    store: Store,
    execution_id: str,
    *,
    answer: Answer | None = None,
    by: str | None = None,
    prepared: PreparedCache = _PREPARED,
) -> TurnResult:
    """One turn of the submitted execution `execution_id` (see the module docstring), taken
    by `by` (a worker's `host:pid`; by default this process), named as the owner when the
    turn starts or resumes the execution."""
    with store.turn_session(execution_id) as session:
        lost = answer is not None and answer.outcome is None
        if answer is not None and not session.answer(answer.dispatch_id, answer.worker, lost=lost):
            return TurnResult(session.execution.state, refused=True)
        execution = session.execution
        if execution.is_terminal or execution.state == "paused" or execution.queue_name is None:
            return TurnResult(execution.state)
        turn = _Turn(store, session, prepared.get(store, execution), by or new_owner())
        return turn.take(answer)


class _Turn:
    """A turn's working state, and the turn function's host (`decisions.TurnHost`)."""

    def __init__(
        self, store: Store, session: TurnSession, prepared: PreparedWorkflow, by: str
    ) -> None:
        self.store = store
        self.by = by
        self.session = session
        self.execution = execution = session.execution
        self.prepared = prepared
        self.now = time.time()
        self.wakes: list[float] = []  # times a turn is due (retries, gate deadlines)
        self.approvals: list[ApprovalRecord] = []  # the waiting gates, as the turn read them
        instances = session.instances()
        self.opening: list[Any] = []
        if execution.state == "queued":
            instances = self._open(instances)
        self.table = InstanceTable(
            prepared.graph,
            prepared.plans,
            instances,
            parallelism=prepared.definition.config.parallelism,
        )
        run = ExecutionContext(
            execution_id=execution.id,
            definition=prepared.definition,
            context=execution.context,
            workdir=prepared.workdir,
            redactor=redactor_from_env(),
        )
        if any(plan.spec.workflow is not None for plan in prepared.plans.values()):
            from automatosx.runtime.subworkflows import SubworkflowRunner

            run.children = SubworkflowRunner(store, execution.id, prepared, 0.0)
        self.run = run
        self.decisions = decisions = Decisions(self.table, run, self)
        self.children = ChildSteps(
            run,
            self.table,
            do=decisions.do,
            report=self._child_reported,
            fail=decisions.record_failure,
            ended=decisions.ended,
            pause=decisions.begin_pause,
        )

    # ---- the turn ----

    def take(self, answer: Answer | None) -> TurnResult:
        decisions, now, execution = self.decisions, self.now, self.execution
        if execution.started_at is None and execution.control_request == "cancel":
            return self._cancel_unstarted()
        if self.opening:
            decisions.do(self.opening)
            decisions.first_turn_checks(now)
        if answer is not None and answer.outcome is not None:
            decisions.record(self._as_recorded(answer.outcome), now)
        elif answer is not None:
            self._interrupted(answer)
        self._children_that_ended()
        if self.table.waiting:
            self.approvals = self.session.waiting_approvals(now)
            for approval in self.approvals:
                if approval.decision is not None:
                    decisions.decide_gate(approval, now)
        decisions.note_control(execution.control_request)
        timeout_at = self._timeout_at()
        if timeout_at is not None and timeout_at <= now:
            decisions.timed_out = True
        ending = decisions.stop_requested()
        if ending is None and decisions.control == "pause":
            decisions.begin_pause()
        attempts: list[Attempt] = []
        if ending is None and not decisions.pausing:
            attempts = decisions.start(decisions.due_retries(now), now)
            ending = decisions.stop_requested()  # a prompt that could not render
        if ending is None and decisions.is_idle(attempts, running=False):
            ending = decisions.idle_ending()
        if ending is not None:
            self._end(ending)
        else:
            self._checkpoint_if_due()
            self._wake_when_due(timeout_at)
        self.session.write(decisions.take_ops())
        for attempt in attempts:
            call = attempt.call
            self.session.dispatch(
                str(uuid.uuid4()),
                step_key=call.step_key,
                attempt=call.attempt,
                queue_name=attempt_queue(call.agent),
                call=call_to_json(call, attempt.cache),
            )
        self._hand_children_on()
        state = ending.state if ending is not None else "executing"
        return TurnResult(state, ended=ending is not None, started=len(attempts))

    def _cancel_unstarted(self) -> TurnResult:
        """Cancelled while still queued: it ends without ever having started (no
        `workflow_started`, no step run)."""
        self.session.write(
            transitions.cancel_execution(
                self.table.records.values(),
                reason="cancelled by request",
                now=self.now,
                step_reason="workflow cancelled before it started",
                previous=self.execution.state,
            )
        )
        self._wake_parent()
        return TurnResult("cancelled", ended=True)

    def _open(self, instances: list[StepInstanceRecord]) -> list[StepInstanceRecord]:
        """A `queued` execution: its first turn (`workflow_started`), or its first since a
        resume put it back in the queue (`workflow_resumed`)."""
        execution, prepared = self.execution, self.prepared
        if execution.started_at is None:
            self.opening = opening_of_new(
                prepared.definition,
                triggered_by=execution.triggered_by,
                priority=execution.priority,
                steps=sum(1 for record in instances if record.parent_key is None),
                owner=self.by,
                workdir=execution.workdir,
            )(self.now)
            return instances
        instances, filled = recovered_instances(execution.id, prepared.plans, instances)
        self.opening = filled + transitions.resume_execution(
            execution,
            instances,
            owner=self.by,
            checkpoint_id=None,
            checkpoint_created_by=None,
            now=self.now,
        )
        return instances

    def _interrupted(self, lost: Answer) -> None:
        record = self.table.records.get(lost.step_key)
        if record is None or record.state != "running" or record.attempt != lost.attempt:
            return
        times = self.session.lost_attempts(lost.step_key)
        if times >= LOST_WORKERS_ALLOWED:
            message = (
                f"its worker was lost {times} times while running it (killed, out of "
                "memory, or its machine gone); it is not tried again"
            )
            self.decisions.record_failure(record, StepError("worker_lost", message), self.now)
            return
        closed = transitions.interrupt(record, self.now)
        self.decisions.do(closed)
        self.decisions.do(transitions.reopen(self.table[lost.step_key]))

    def _as_recorded(self, outcome: AttemptOutcome) -> AttemptOutcome:
        """The attempt as the instance began it (its start is the turn's that started it)."""
        record = self.table.records.get(outcome.step_key)
        if record is None or record.started_at is None:
            return outcome
        return replace(outcome, started_at=record.started_at)

    def _timeout_at(self) -> float | None:
        timeout_ms = self.prepared.definition.config.timeout
        return self._segment_started_at() + timeout_ms / 1000 if timeout_ms else None

    def _segment_started_at(self) -> float:
        """When the current run segment began (`run` or `resume`, as in a runner)."""
        execution = self.execution
        if self.opening:  # this turn starts or resumes it
            resumes = execution.resume_count + (1 if execution.started_at is not None else 0)
            started = self.now
        else:
            resumes = execution.resume_count
            found = _SEGMENTS.get((execution.id, resumes))
            if found is not None:
                return found
            resumed = self.session.last_resumed_at() if resumes else None
            started = resumed or execution.started_at or self.now
        _SEGMENTS[(execution.id, resumes)] = started
        while len(_SEGMENTS) > PREPARED_KEPT:
            _SEGMENTS.popitem(last=False)
        return started

    def _end(self, ending: Ending) -> None:
        """The run ends: what is still out is stopped wherever it runs, running children
        are asked to stop, the parent (if any) gets a turn."""
        self.session.cancel_dispatches()
        if ending.state != "paused":
            for record in self._running_children():
                assert record.child_execution_id is not None
                self.session.request_control(record.child_execution_id, "cancel")
        started = self.execution.started_at or self.now
        self.decisions.do(self.decisions.ending_ops(ending, started_at=started, now=self.now))
        self.decisions.do([SetIdleUntil(None)])
        self._wake_parent()

    def _wake_parent(self) -> None:
        """It ended: its parent (if any) gets a turn to record that."""
        parent = self.execution.parent_execution_id
        if parent is not None:
            self.session.wake(parent)

    def _checkpoint_if_due(self) -> None:
        """A periodic checkpoint, as a runner writes one every `checkpointInterval` (not
        while only gates wait: it would repeat the last one)."""
        decisions = self.decisions
        if decisions.pausing or not self.table.holding:
            return
        interval = self.prepared.definition.config.checkpoint_interval / 1000
        if self.now - (self.execution.started_at or self.now) < interval:
            return  # younger than one interval: no query needed to know it is not due
        last = self.session.last_checkpoint_at() or self.execution.started_at or self.now
        if self.now - last < interval:
            return
        decisions.periodic_checkpoint(self.now)

    def _wake_when_due(self, timeout_at: float | None) -> None:
        """The next time something happens with no event to cause it (a retry, a gate's
        deadline, the workflow timeout) gets a turn scheduled for it, once: the execution
        keeps that time (`idle_until`), and a later turn that finds the same time schedules
        nothing more."""
        due = list(self.wakes)
        due += [r.retry_at for r in self.decisions.waiting_retries() if r.retry_at is not None]
        waiting = self.table.waiting
        due += [
            a.expires_at
            for a in self.approvals
            if a.step_key in waiting and a.expires_at is not None and a.decision is None
        ]
        if timeout_at is not None:
            due.append(timeout_at)
        at = min(due) if due else None
        # Near or past (this machine's clock may lag the database's, which runs the job):
        # scheduled again, so the turn that is due always comes.
        if at is not None and (at != self.execution.idle_until or at <= self.now + CLOCK_SLACK_S):
            self.session.wake(at=at)
        if at != self.execution.idle_until:
            self.decisions.do([SetIdleUntil(at)])

    # ---- sub-workflow steps: children that are submitted executions too ----

    def _running_children(self) -> list[StepInstanceRecord]:
        return [r for r in self.table.in_state("running") if r.child_execution_id is not None]

    def _children_that_ended(self) -> None:
        running = {r.child_execution_id: r for r in self._running_children()}
        if not running:
            return
        launcher = self.run.children
        assert launcher is not None
        for child in self.session.executions(list(running)):  # type: ignore[arg-type]
            if child.is_terminal or child.state == "paused":
                record = running[child.id]
                self.decisions.record(
                    launcher.ended(record.key, record.attempt, child.id), self.now
                )

    def _child_reported(self, outcome: AttemptOutcome) -> None:
        """A child that could not be had, or that had ended already: recorded at once."""
        self.decisions.record(outcome, self.now)

    def _hand_children_on(self) -> None:
        """Children the turn created go to the workers (`queued`, with a first turn) once
        the write that creates them is applied; existing ones the step attaches to again
        are requeued (a paused one) or woken."""
        for child_id, start in self.children.take_due():
            if start is not None:
                submitted = transitions.submit(start.create.priority, self.now)
                self.session.write(submitted, execution_id=child_id)
            else:
                self.session.requeue_paused(child_id)
                self.session.wake(child_id)

    # ---- TurnHost ----

    def retry_later(self, key: str, at: float) -> None:
        self.wakes.append(at)

    def watch_gate(self, key: str, deadline: float) -> None:
        self.wakes.append(deadline)

    def begin_child(self, key: str, now: float, local: dict[str, Any] | None) -> None:
        self.children.begin(key, now, local=local)

    def record_child(self, record: StepInstanceRecord, outcome: ChildOutcome) -> None:
        self.children.record(record, outcome)

    def pause_children(self) -> None:
        for record in self._running_children():
            assert record.child_execution_id is not None
            self.session.request_control(record.child_execution_id, "pause")
