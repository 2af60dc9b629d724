"""Sub-workflow steps in the engine: the durable changes of a step that runs a child
execution, the child's context, and what the engine asks of whoever runs children.

A sub-workflow step's instance moves through:

    pending --start_child--> running (its child created in the same write, named on it)
    running --complete_child--> completed (output: the child's stepResults)
    running --fail--> failed (`subworkflow_failed`; never retried: the child's steps are)
    running --child_paused--> pending (the child paused: so does the parent)
    pending | cancelled (interrupted) --attach_child--> running (a resume: the same child,
                                                        the same attempt)

so one step has one child for its whole life, whatever pauses and crashes come between.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from automatosx.definition.templates import PLACEHOLDER_RE, Placeholder, render, resolve
from automatosx.runtime.step_attempt import AttemptOutcome
from automatosx.store.events import StepCompleted, StepStarted
from automatosx.store.records import (
    AppendEvent,
    CreateChildExecution,
    PutInstance,
    StepInstanceRecord,
    WriteOp,
)

if TYPE_CHECKING:
    from automatosx.runtime.engine import ExecutionRunner
    from automatosx.runtime.preparation import PreparedWorkflow

ChildState = Literal["completed", "failed", "cancelled", "paused"]
_WHOLE = re.compile(r"^\s*" + PLACEHOLDER_RE.pattern + r"\s*$")


@dataclass(frozen=True)
class ChildOutcome(AttemptOutcome):
    """How a step's child ended (or paused): `result` holds its stepResults when it
    completed; `error` (`subworkflow_failed`) says why it failed or was cancelled."""

    state: ChildState = "failed"
    child_execution_id: str = ""


@dataclass(frozen=True)
class ChildStart:
    """A new child, decided before the write that creates it: its ID, that write, and the
    prepared sub-workflow its runner runs."""

    execution_id: str
    create: CreateChildExecution
    prepared: PreparedWorkflow


class ChildRunner(Protocol):
    """What the engine needs from whoever runs its children (`runtime.subworkflows`)."""

    def create(self, key: str, workflow: str, context: dict[str, Any], now: float) -> ChildStart:
        """The write creating a new child of step `key`; raises StepError when there can
        be none (`subworkflow_failed`: nesting too deep)."""
        ...

    def runner(self, child_id: str, start: ChildStart | None) -> ExecutionRunner | None:
        """The runner of the child `start` created or, `start` None, of the step's existing
        child, taken over (None: it has ended). Raises AxError if it cannot be had."""
        ...

    async def run(
        self,
        key: str,
        attempt: int,
        child_id: str,
        runner: ExecutionRunner,
        stop_reason: Callable[[], str | None],
    ) -> ChildOutcome:
        """Run the child to its end. Cancelled meanwhile, it cancels the child with
        `stop_reason()` and waits until it has ended (None: the parent is aborting; the
        child stops at once, writing nothing), then re-raises."""
        ...

    def ended(self, key: str, attempt: int, child_id: str) -> ChildOutcome:
        """The outcome of a child that had ended before its step looked again."""
        ...

    def failed(self, key: str, attempt: int, child_id: str, exc: Exception) -> ChildOutcome:
        """The step fails: the child could not be run (`subworkflow_failed`)."""
        ...


def child_context(
    values: Mapping[str, Any] | None,
    *,
    context: Mapping[str, Any],
    step_outputs: Mapping[str, Any],
    empty_steps: Collection[str],
    local: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The child's context: `with`, its strings rendered as templates at any depth. A
    string that is one placeholder and nothing else gives the value itself (a list stays a
    list, for the child's `forEach`); any other text renders as a prompt does. Raises
    StepError (`template_error`) naming a placeholder that cannot be resolved."""

    def value_of(value: Any) -> Any:
        if isinstance(value, str):
            whole = _WHOLE.match(value)
            if whole is None:
                return render(
                    value,
                    context=context,
                    step_outputs=step_outputs,
                    empty_steps=empty_steps,
                    local=local,
                )
            head, *path = whole.group(1).split(".")
            placeholder = Placeholder(value.strip(), head, tuple(path))
            return resolve(
                placeholder,
                context=context,
                step_outputs=step_outputs,
                empty_steps=empty_steps,
                local=local,
            )
        if isinstance(value, dict):
            return {name: value_of(item) for name, item in value.items()}
        if isinstance(value, list):
            return [value_of(item) for item in value]
        return value

    return {name: value_of(value) for name, value in (values or {}).items()}


def step_results(instances: Iterable[StepInstanceRecord]) -> dict[str, Any]:
    """An execution's `stepResults` (as `status` shows them): each completed step's
    output, a forEach step's being its items' outputs. A child's is its step's output."""
    return {
        record.key: record.output
        for record in instances
        if record.state == "completed" and record.parent_key is None
    }


# ---- transitions of a sub-workflow step ----


def start_child(
    record: StepInstanceRecord, create: CreateChildExecution, now: float
) -> list[WriteOp]:
    """The step starts: running, naming its child, which the same write creates."""
    started = record.evolve(
        state="running",
        attempt=record.attempt + 1,
        child_execution_id=create.execution_id,
        error_kind=None,
        error_message=None,
        started_at=now,
        completed_at=None,
        duration_ms=None,
    )
    event = StepStarted(record.key, started.attempt, None, child_execution_id=create.execution_id)
    return [create, PutInstance(started, record), AppendEvent(event, now)]


def attach_child(record: StepInstanceRecord, now: float) -> list[WriteOp]:
    """A resumed execution goes on with the child its step already has (paused, or left
    running by a runner that died): running again, in the same attempt."""
    running = record.evolve(
        state="running",
        attempt=max(record.attempt, 1),
        error_kind=None,
        error_message=None,
        started_at=now,
        completed_at=None,
        duration_ms=None,
    )
    event = StepStarted(
        record.key, running.attempt, None, child_execution_id=record.child_execution_id
    )
    return [PutInstance(running, record), AppendEvent(event, now)]


def complete_child(record: StepInstanceRecord, output: Any, now: float) -> list[WriteOp]:
    """The child completed: the step's output is its stepResults."""
    duration = round(max(0.0, now - (record.started_at or now)) * 1000)
    done = record.evolve(state="completed", output=output, completed_at=now, duration_ms=duration)
    event = StepCompleted(record.key, record.attempt, duration, None)
    return [PutInstance(done, record), AppendEvent(event, now)]


def child_paused(record: StepInstanceRecord, now: float) -> list[WriteOp]:
    """The child paused: the step waits, pending, for the resume that attaches to it again
    (the parent pauses too; the child's own events tell the pause)."""
    duration = round(max(0.0, now - (record.started_at or now)) * 1000)
    return [PutInstance(record.evolve(state="pending", duration_ms=duration), record)]
