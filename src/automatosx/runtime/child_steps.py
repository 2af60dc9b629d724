"""The runner's side of its sub-workflow steps: their child executions while they run.

A sub-workflow step's child is created in the fenced write that starts the step, so it can
only be launched after that write commits; it then runs as a task the runner tracks like
an attempt (the ending path stops it), and its end comes back to the runner's loop as an
outcome like an attempt's. In between, the parent's pause reaches the running children,
and its ending reaches them too: a child stops, with a reason naming its parent, before
the parent records how it ended. `ChildSteps` holds what that takes (the children due to
launch, the runners of those running, why they must stop) so the runner's loop only calls
it. The step's transitions are `children`' (pure); running a child is the `ChildRunner`'s
(`subworkflows`); the effects of the step's end on the rest of the run are the runner's,
reached through the callbacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from automatosx.errors import AxError, StepError
from automatosx.runtime import children, transitions
from automatosx.runtime.children import ChildOutcome, ChildRunner, ChildStart
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.step_attempt import AttemptOutcome, check_output
from automatosx.store.codec import as_stored
from automatosx.store.records import StepInstanceRecord, WriteOp

if TYPE_CHECKING:
    from automatosx.runtime.engine import ExecutionContext, ExecutionRunner

ChildTask = tuple[str, Coroutine[Any, Any, AttemptOutcome]]  # a step's key, its child's run


class ChildSteps:
    """The child executions of one execution's sub-workflow steps."""

    def __init__(
        self,
        run: ExecutionContext,
        table: InstanceTable,
        *,
        do: Callable[[Sequence[WriteOp]], None],
        report: Callable[[AttemptOutcome], None],
        fail: Callable[[StepInstanceRecord, StepError, float], None],
        ended: Callable[[str, StepError | None, float], None],
        pause: Callable[[], None],
    ) -> None:
        self._run = run
        self._table = table
        # The runner's: apply and queue operations; queue an outcome and wake the loop; a
        # step's failure (it may be retried), a step's end for good; pausing the run.
        self._do = do
        self._report = report
        self._fail = fail
        self._ended = ended
        self._pause = pause
        # Children to launch after the commit that creates them (None: an existing one,
        # resumed), the runners of those running, and why they must stop.
        self._due: list[tuple[str, str, ChildStart | None]] = []
        self._runners: dict[str, ExecutionRunner] = {}
        self._stop: str | None = None
        self._aborting = False

    @property
    def due(self) -> bool:
        """Whether the last commit created or resumed children still to launch."""
        return bool(self._due)

    @property
    def _launcher(self) -> ChildRunner:
        launcher = self._run.children
        assert launcher is not None  # a run with sub-workflow steps has one
        return launcher

    def begin(self, key: str, now: float, *, local: dict[str, Any] | None) -> None:
        """A sub-workflow step starts its child, created in the write that starts the step
        and launched after it commits; a step that has its child already (a resume) goes
        on with it. A `with` that cannot render, or nesting too deep, fails the step."""
        record = self._table[key]
        if record.child_execution_id is not None:
            self._do(children.attach_child(record, now))
            self._due.append((key, record.child_execution_id, None))
            return
        plan = self._table.plan(record)
        launcher = self._launcher
        assert plan.spec.workflow is not None
        try:
            context = children.child_context(
                plan.spec.with_,
                context=self._run.context,
                step_outputs=self._table.outputs,
                empty_steps=self._table.empty,
                local=local,
            )
            start = launcher.create(key, plan.spec.workflow, context, now)
        except StepError as error:
            self._do(transitions.start(record, plan, now))
            self._fail(self._table[key], error, now)
            return
        self._do(children.start_child(record, start.create, now))
        self._due.append((key, start.execution_id, start))

    def take_due(self) -> list[tuple[str, ChildStart | None]]:
        """(child ID, its start: None for an existing one) of each child the last write
        created or attached again, for a host that runs children elsewhere (`ax worker`'s
        turns submit them to the workers) instead of launching them here."""
        due, self._due = self._due, []
        return [(child_id, start) for _key, child_id, start in due]

    def launch(self, *, pausing: bool) -> list[ChildTask]:
        """The children the last commit created or resumed, each to run as a task the
        runner tracks like an attempt; one that ended already (or cannot be had) is
        reported at once."""
        due, self._due = self._due, []
        launcher = self._launcher
        tasks: list[ChildTask] = []
        for key, child_id, start in due:
            attempt = self._table[key].attempt
            try:
                runner = launcher.runner(child_id, start)
            except AxError as exc:
                self._report(launcher.failed(key, attempt, child_id, exc))
                continue
            if runner is None:
                self._report(launcher.ended(key, attempt, child_id))
                continue
            self._runners[key] = runner
            if pausing:
                runner.request_pause()
            tasks.append((key, self._child(key, attempt, child_id, runner)))
        return tasks

    async def _child(
        self, key: str, attempt: int, child_id: str, runner: ExecutionRunner
    ) -> AttemptOutcome:
        try:
            outcome = await self._launcher.run(key, attempt, child_id, runner, self._stop_reason)
        finally:
            self._runners.pop(key, None)
        self._report(outcome)
        return outcome

    def _stop_reason(self) -> str | None:
        """Why a child must stop now (None: this runner is aborting, the child too)."""
        if self._aborting:
            return None
        return self._stop or f"its parent execution {self._run.execution_id} stopped"

    def record(self, record: StepInstanceRecord, outcome: ChildOutcome) -> None:
        """A child ended: the step completes with its stepResults (checked against the
        step's outputSchema) or fails (`subworkflow_failed`); a child that paused pauses
        its parent too (the step waits for the resume that attaches to it again)."""
        at = outcome.finished_at
        if outcome.state == "paused":
            self._do(children.child_paused(record, at))
            self._pause()
            return
        error = outcome.error
        if outcome.result is not None:
            output = as_stored(outcome.result.output, self._run.redactor)
            validator = self._table.plan(record).validator
            try:
                if validator is not None:
                    check_output(validator, output)
            except StepError as invalid:
                error = invalid
            else:
                self._do(children.complete_child(record, output, at))
                self._ended(record.key, None, at)
                return
        self._fail(record, error or StepError("subworkflow_failed", "no outcome"), at)

    def pause(self) -> None:
        """The parent pauses: its running children pause first."""
        for runner in self._runners.values():
            runner.request_pause()

    def stop_with_parent(self, key: str, child_id: str) -> None:
        """A child that paused just as its parent ends (other than paused): it ends
        (cancelled) with its parent."""
        self._due.append((key, child_id, None))

    def abort(self) -> None:
        """The parent aborts (lease lost, an unexpected error): so do its children."""
        self._aborting = True

    def parent_ends(self, reason: str) -> None:
        """The parent takes its ending path (`reason`: how it ends): what its children are
        told when they are stopped."""
        self._stop = reason

    async def stop_unstarted(self) -> None:
        """Children created or resumed that never got to run (the run ended in the turn
        that started them): they run only to end cancelled, with their parent."""
        if not self._due and not self._runners:
            return
        launcher = self._run.children
        due, self._due = self._due, []
        runners = list(self._runners.values())
        self._runners.clear()
        if launcher is not None:
            for _key, child_id, start in due:
                try:
                    runner = launcher.runner(child_id, start)
                except AxError:
                    continue
                if runner is not None:
                    runners.append(runner)
        why = self._stop_reason() or "its parent execution stopped"
        for runner in runners:
            runner.request_cancel(why)
        if runners:
            await asyncio.gather(*(r.run() for r in runners), return_exceptions=True)
