"""The execution engine: an eager asyncio scheduler that writes every change durably.

One loop drives an execution. Attempts run through the `Executor` as tasks; when one
finishes it only queues its outcome and wakes the loop. Each loop turn then:

1. drains what happened since the last one (finished attempts, due retries, due timers);
2. decides what each of those changes and what starts next (`decisions.Decisions`, the
   turn function `ax worker` runs too: the new records go into the in-memory
   `InstanceTable` and the same operations are queued);
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
from typing import Any

from automatosx.errors import LeaseLostError, StoreFullError
from automatosx.runtime.child_steps import ChildSteps
from automatosx.runtime.children import ChildOutcome
from automatosx.runtime.decisions import Decisions, Ending, ExecutionContext, FinalState
from automatosx.runtime.executor import Attempt, Executor
from automatosx.runtime.gate_watch import GateWatch
from automatosx.runtime.instances import InstanceTable
from automatosx.runtime.lease import CONTROL_POLL_S, GATES_ONLY_POLL_S, heartbeat_interval
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.store.async_store import AsyncStore
from automatosx.store.records import Lease, StepInstanceRecord, WriteOp

__all__ = [
    "EXIT_CODES",
    "CommitObserver",
    "ExecutionContext",
    "ExecutionOutcome",
    "ExecutionRunner",
]

LAUNCH_BATCH = 16  # attempts launched per event-loop turn when many start together
EXIT_CODES: dict[str, int] = {"completed": 0, "failed": 1, "cancelled": 3, "paused": 4}
CommitObserver = Callable[[Sequence[WriteOp]], None]


@dataclass(frozen=True)
class ExecutionOutcome:
    execution_id: str
    state: FinalState
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """`run`'s exit code."""
        return EXIT_CODES[self.state]


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
        self.lease_seconds = lease_seconds
        self.on_commit = on_commit
        self._tasks: dict[str, asyncio.Task[AttemptOutcome]] = {}
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._finished: list[AttemptOutcome] = []
        self._retries_due: list[str] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._due: set[str] = set()
        self._wake = asyncio.Event()
        self._started = time.time()
        self._opening = opening  # the transition that begins (or resumes) the run
        # What the run decides (the turn function), the steps that wait for a person, and
        # those that run a child execution.
        self.decisions = decisions = Decisions(table, run, self)
        self._gates = GateWatch(
            store, run.execution_id, table, decide=decisions.decide_gate, wake=self._wake.set
        )
        self._children = ChildSteps(
            run,
            table,
            do=decisions.do,
            report=self._report,
            fail=decisions.record_failure,
            ended=decisions.ended,
            pause=decisions.begin_pause,
        )

    @property
    def execution_id(self) -> str:
        return self.run_info.execution_id

    # ---- public ----

    def request_cancel(self, reason: str) -> None:
        """Cancel from inside this process (SIGINT/SIGTERM handlers)."""
        if self.decisions.cancel_reason is None:
            self.decisions.cancel_reason = reason
        self._wake.set()

    def request_pause(self) -> None:
        """Pause from inside this process (a parent pausing its running children)."""
        self.decisions.note_control("pause")
        self._wake.set()

    async def run(self) -> ExecutionOutcome:
        self._loop = asyncio.get_running_loop()
        self._started = time.time()
        self.decisions.do(self._opening(self._started))
        config = self.run_info.definition.config
        self._arm("control", CONTROL_POLL_S, gates_only=GATES_ONLY_POLL_S)
        self._arm("heartbeat", heartbeat_interval(self.lease_seconds))
        self._arm("checkpoint", config.checkpoint_interval / 1000)
        if config.timeout:
            self._timers["timeout"] = self._loop.call_later(
                config.timeout / 1000, self._on_workflow_timeout
            )
        self.decisions.first_turn_checks(self._started)
        self._arm_waiting_retries()
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
        decisions = self.decisions
        # drain
        finished, self._finished = self._finished, []
        retries, self._retries_due = self._retries_due, []
        if self._due:
            await self._on_timers(now)
        if self._gates.due:
            await self._gates.decide(now, until=self.lease.expires_at)
        # decide
        for outcome in finished:
            if decisions.record(outcome, now):
                self._tasks.pop(outcome.step_key, None)
        if not decisions.pausing and (retries or self.table.may_start()):
            # Ask the store, not only the 100 ms poll: a pause or cancel recorded before this
            # moment must never be followed by a new step.
            decisions.note_control(
                await self.store.control_request(self.execution_id, until=self.lease.expires_at)
            )
        ending = decisions.stop_requested()
        if ending is None and decisions.control == "pause":
            decisions.begin_pause()
        attempts: list[Attempt] = []
        if ending is None and not decisions.pausing:
            attempts = decisions.start(retries, now)
            ending = decisions.stop_requested()  # a prompt that could not render
        if ending is None and decisions.is_idle(attempts, running=bool(self._tasks)):
            ending = decisions.idle_ending()
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
            for key, child in self._children.launch(pausing=decisions.pausing):
                self._tasks[key] = self._loop.create_task(child)
        return None

    # ---- the turn's host (`decisions.TurnHost`) ----

    def retry_later(self, key: str, at: float) -> None:
        old = self._retry_timers.pop(key, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, at - time.time())
        self._retry_timers[key] = self._loop.call_later(delay, self._on_retry_due, key)

    def watch_gate(self, key: str, deadline: float) -> None:
        self._gates.watch(key, deadline)

    def begin_child(self, key: str, now: float, local: dict[str, Any] | None) -> None:
        self._children.begin(key, now, local=local)

    def record_child(self, record: StepInstanceRecord, outcome: ChildOutcome) -> None:
        self._children.record(record, outcome)

    def pause_children(self) -> None:
        self._children.pause()

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

    async def _commit(self) -> None:
        ops = self.decisions.take_ops()
        if ops:
            await self.store.write(self.lease, ops)
            if self.on_commit is not None:
                self.on_commit(ops)

    # ---- the one ending path ----

    async def _end(self, ending: Ending) -> ExecutionOutcome:
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
                self.decisions.record(outcome, now)
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
        self.decisions.do(self.decisions.ending_ops(ending, started_at=self._started, now=now))
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
            self.decisions.note_control(control)
        if "control" in due:
            record = await self.store.get_execution(self.execution_id, until=self.lease.expires_at)
            if record.lease_epoch != self.lease.epoch or record.lease_owner != self.lease.owner:
                raise LeaseLostError(
                    f"execution {self.execution_id} was taken over by "
                    f"{record.lease_owner} (epoch {record.lease_epoch}); this runner stops"
                )
            self.decisions.note_control(record.control_request)
        if "control" in due:
            self._gates.look_again()
        if "checkpoint" in due and not self.decisions.pausing and not self._only_gates_wait():
            self.decisions.periodic_checkpoint(now)

    def _only_gates_wait(self) -> bool:
        return self._gates.only_gates_wait(running=bool(self._tasks))

    def _on_retry_due(self, key: str) -> None:
        self._retry_timers.pop(key, None)
        self._retries_due.append(key)
        self._wake.set()

    def _on_workflow_timeout(self) -> None:
        self.decisions.timed_out = True
        self._wake.set()

    def _arm_waiting_retries(self) -> None:
        """A resumed execution whose runner died during a retry's backoff: the retry comes
        when its backoff ends, as it would have."""
        for record in self.decisions.waiting_retries():
            assert record.retry_at is not None
            self.retry_later(record.key, record.retry_at)
