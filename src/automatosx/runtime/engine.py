"""The execution engine: an eager asyncio scheduler that writes every change durably.

One loop drives an execution. Attempts run as tasks; when one finishes it only queues its
outcome and wakes the loop. Each loop turn then handles everything that happened since the
last one (finished attempts, due retries, control requests, timers), queues the resulting
store operations, commits them in ONE fenced `store.write`, and only then launches the steps
those changes unlocked, so a step's completion is durable before any dependent starts while
a burst of completions costs a single transaction.

Stopping: `cancel` (from any process, or SIGINT/SIGTERM) kills running attempts and ends
`cancelled`; a non-optional failure without `continueOnError`, or the workflow timeout, ends
`failed` the same way; `pause` starts nothing new, lets running attempts finish, then writes
a `pause` checkpoint and ends `paused`. Losing the lease (another process took over) stops
everything at once and writes nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from automatosx.agents.base import ProviderCall, StepRunner
from automatosx.agents.io_loop import engine_priority
from automatosx.errors import LeaseLostError
from automatosx.runtime.checkpoints import checkpoint_ops, pause_ops
from automatosx.runtime.lease import CONTROL_POLL_S, heartbeat_interval
from automatosx.runtime.progress import ExecutionProgress
from automatosx.runtime.step_attempt import AttemptOutcome, run_attempt
from automatosx.store.base import Store
from automatosx.store.records import (
    AppendEvent,
    ClearControlRequest,
    ControlRequest,
    EventType,
    Lease,
    SetExecutionState,
    WriteOp,
)

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

LAUNCH_BATCH = 16  # attempts launched per event-loop turn when many start together
FinalState = Literal["completed", "failed", "cancelled", "paused"]
EXIT_CODES: dict[str, int] = {"completed": 0, "failed": 1, "cancelled": 3, "paused": 4}
CommitObserver = Callable[[Sequence[WriteOp]], None]


@dataclass(frozen=True)
class ExecutionOutcome:
    execution_id: str
    state: FinalState
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]


class ExecutionRunner:
    def __init__(
        self,
        *,
        store: Store,
        lease: Lease,
        progress: ExecutionProgress,
        runner: StepRunner,
        opening_ops: Sequence[WriteOp],
        lease_seconds: float,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.progress = progress
        self.runner = runner
        self.lease_seconds = lease_seconds
        self.on_commit = on_commit
        progress.pending_ops[:0] = list(opening_ops)
        self._tasks: dict[str, asyncio.Task[AttemptOutcome]] = {}
        self._backoff: dict[str, asyncio.TimerHandle] = {}
        self._finished: list[AttemptOutcome] = []
        self._retries_due: list[str] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._due: set[str] = set()
        self._control: ControlRequest | None = None
        self._cancel_reason: str | None = None
        self._timed_out = False
        self._pausing = False
        self._wake = asyncio.Event()
        self._started = time.time()

    # ---- public ----

    def request_cancel(self, reason: str) -> None:
        """Cancel from inside this process (SIGINT/SIGTERM handlers)."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._wake.set()

    async def run(self) -> ExecutionOutcome:
        self._loop = asyncio.get_running_loop()
        self._started = time.time()
        self._arm("control", CONTROL_POLL_S)
        self._arm("heartbeat", heartbeat_interval(self.lease_seconds))
        self._arm("checkpoint", self.progress.definition.config.checkpoint_interval / 1000)
        workflow_timeout = self.progress.definition.config.timeout
        if workflow_timeout:
            self._timers["timeout"] = self._loop.call_later(
                workflow_timeout / 1000, self._on_workflow_timeout
            )
        try:
            outcome = await self._turn(self._started)
            while outcome is None:
                if not self._wake.is_set():
                    await self._wake.wait()
                self._wake.clear()
                outcome = await self._turn(time.time())
            return outcome
        except BaseException:
            await self._abort()
            raise
        finally:
            for handle in self._timers.values():
                handle.cancel()

    # ---- one loop turn ----

    async def _turn(self, now: float) -> ExecutionOutcome | None:
        progress = self.progress
        if self._due:
            with engine_priority():
                self._handle_timers(now)
        if self._cancel_reason is None and self._control == "cancel":
            self._cancel_reason = "cancelled by request"
        if self._cancel_reason is not None:
            return await self._stop("cancelled", self._cancel_reason)
        if self._timed_out:
            timeout_ms = progress.definition.config.timeout
            return await self._stop("failed", f"workflow timed out after {timeout_ms} ms")
        if self._control == "pause" and not self._pausing:
            self._begin_pause()
        if self._finished:
            self._record_finished()
        if progress.fatal_failure:
            return await self._stop("failed", progress.fatal_failure)
        if not self._pausing:
            # Ask the store, not only the 100 ms poll: a pause or cancel recorded before this
            # moment must never be followed by a new step.
            with engine_priority():
                control = self.store.control_request(self.lease.execution_id)
            self._note_control(control)
            if self._control == "cancel":
                self._cancel_reason = "cancelled by request"
                return await self._stop("cancelled", self._cancel_reason)
            if self._control == "pause":
                self._begin_pause()
        calls: list[ProviderCall] = []
        if self._retries_due:
            due, self._retries_due = self._retries_due, []
            for key in due:
                if self._backoff.pop(key, None) is not None:
                    call = progress.begin_attempt(key, now)
                    if call is not None:
                        calls.append(call)
        calls.extend(progress.start_ready(now))
        if progress.fatal_failure:  # a prompt that could not render
            for call in calls:
                progress.record_cancelled(call.step_key, call.attempt, now, "not started")
            return await self._stop("failed", progress.fatal_failure)
        if not calls and not self._tasks and not self._backoff:
            return self._finish_idle(now)
        self._flush()
        for index, call in enumerate(calls):
            if index and index % LAUNCH_BATCH == 0:
                # Let the loop run the attempts launched so far (their first steps run in
                # one loop turn) and its timers: 500 steps started together would otherwise
                # hold the loop for tens of milliseconds in a single turn (16 rather than
                # 64 at a time: the first turn of 500 HTTP steps lagged 15 ms, not 20-26).
                await asyncio.sleep(0)
            self._launch(call, now)
        return None

    def _record_finished(self) -> None:
        finished, self._finished = self._finished, []
        progress = self.progress
        for outcome in finished:
            key = outcome.step_key
            if key not in self._tasks or progress.attempts.get(key) != outcome.attempt:
                continue
            del self._tasks[key]
            retry = progress.record(outcome)
            if retry is not None:
                self._backoff[key] = self._loop.call_later(retry.delay_s, self._on_retry_due, key)

    def _launch(self, call: ProviderCall, now: float) -> None:
        plan = self.progress.plans[call.step_key]
        task = self._loop.create_task(self._attempt(call, now, plan.validator))
        self._tasks[call.step_key] = task

    async def _attempt(
        self, call: ProviderCall, now: float, validator: Validator | None
    ) -> AttemptOutcome:
        """One attempt; its outcome is queued and the loop woken from inside the task (a
        done-callback would cost one more event-loop turn per step). A cancelled attempt
        queues nothing: whoever cancelled it records it."""
        outcome = await run_attempt(self.runner, call, started_at=now, validator=validator)
        self._finished.append(outcome)
        self._wake.set()
        return outcome

    def _flush(self) -> None:
        ops = self.progress.take_ops()
        if ops:
            with engine_priority():
                self.store.write(self.lease, ops)
            if self.on_commit is not None:
                self.on_commit(ops)

    # ---- ending ----

    def _begin_pause(self) -> None:
        """Start nothing new; steps waiting to retry give their slot back (they retry on
        resume); running attempts finish and keep their results."""
        self._pausing = True
        self.progress.stop_starting = True
        for key, handle in self._backoff.items():
            handle.cancel()
            self.progress.scheduler.release(key)
        self._backoff.clear()
        self._retries_due.clear()

    def _finish_idle(self, now: float) -> ExecutionOutcome:
        """Nothing runs and nothing can start: completed, failed, or paused."""
        progress = self.progress
        ops = progress.pending_ops
        state: FinalState
        error: str | None = None
        if progress.failed_steps:
            state = "failed"
            key, message = next(iter(progress.failed_steps.items()))
            error = f"step '{key}' failed: {message}"
            ops.append(SetExecutionState("failed", error, now))
            ops.append(
                AppendEvent(
                    "workflow_failed",
                    None,
                    {"error": error, "failedSteps": list(progress.failed_steps)},
                    now,
                )
            )
        elif self._pausing and not progress.ready.is_finished():
            state = "paused"
            ops.extend(
                pause_ops(
                    context=progress.context,
                    completed_steps=progress.completed_steps(),
                    pending_steps=progress.unfinished_steps(),
                    at=now,
                )
            )
        elif progress.ready.is_finished():
            state = "completed"
            ops.append(SetExecutionState("completed", None, now))
            ops.append(
                AppendEvent(
                    "workflow_completed",
                    None,
                    {"durationMs": int((now - self._started) * 1000), "steps": len(progress.plans)},
                    now,
                )
            )
        else:  # defensive: the graph left steps that can never become ready
            state = "failed"
            error = "no step can start: " + ", ".join(progress.unfinished_steps())
            ops.append(SetExecutionState("failed", error, now))
            ops.append(AppendEvent("workflow_failed", None, {"error": error}, now))
        ops.append(ClearControlRequest())
        self._flush()
        self.store.release_lease(self.lease)
        return ExecutionOutcome(progress.execution_id, state, error)

    async def _stop(self, state: Literal["cancelled", "failed"], reason: str) -> ExecutionOutcome:
        """Kill every running attempt (process groups included), record them cancelled, end."""
        progress = self.progress
        progress.stop_starting = True
        running = list(self._tasks.items())
        for _, task in running:
            task.cancel()
        if running:
            await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        now = time.time()
        step_reason = "workflow cancelled" if state == "cancelled" else reason
        for key, _ in running:
            progress.record_cancelled(key, progress.attempts[key], now, step_reason)
        for key, handle in self._backoff.items():
            handle.cancel()
            progress.record_cancelled(key, progress.attempts[key] + 1, now, step_reason)
        self._tasks.clear()
        self._backoff.clear()
        self._finished.clear()
        ops = progress.pending_ops
        ops.append(SetExecutionState(state, reason, now))
        event: EventType = "workflow_cancelled" if state == "cancelled" else "workflow_failed"
        ops.append(AppendEvent(event, None, {"error": reason}, now))
        ops.append(ClearControlRequest())
        self._flush()
        self.store.release_lease(self.lease)
        return ExecutionOutcome(progress.execution_id, state, reason)

    async def _abort(self) -> None:
        """Lease lost or an unexpected error: stop every attempt, write nothing."""
        for handle in self._backoff.values():
            handle.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # ---- timers and callbacks ----

    def _arm(self, name: str, interval: float) -> None:
        def tick() -> None:
            self._due.add(name)
            self._wake.set()
            self._timers[name] = self._loop.call_later(interval, tick)

        self._timers[name] = self._loop.call_later(interval, tick)

    def _handle_timers(self, now: float) -> None:
        due, self._due = self._due, set()
        if "heartbeat" in due:
            self.lease, control = self.store.renew_lease(self.lease, self.lease_seconds)
            self._note_control(control)
        if "control" in due:
            record = self.store.get_execution(self.lease.execution_id)
            if record.lease_epoch != self.lease.epoch or record.lease_owner != self.lease.owner:
                raise LeaseLostError(
                    f"execution {self.lease.execution_id} was taken over by "
                    f"{record.lease_owner} (epoch {record.lease_epoch}); this runner stops"
                )
            self._note_control(record.control_request)
        if "checkpoint" in due and not self._pausing:
            progress = self.progress
            progress.pending_ops.extend(
                checkpoint_ops(
                    state="executing",
                    context=progress.context,
                    completed_steps=progress.completed_steps(),
                    pending_steps=progress.unfinished_steps(),
                    created_by="automatic",
                    label="periodic",
                    at=now,
                )
            )

    def _note_control(self, control: ControlRequest | None) -> None:
        if control == "cancel" or (control == "pause" and self._control is None):
            self._control = control

    def _on_retry_due(self, key: str) -> None:
        self._retries_due.append(key)
        self._wake.set()

    def _on_workflow_timeout(self) -> None:
        self._timed_out = True
        self._wake.set()
