"""The in-memory state of one execution and the durable operations each change produces.

`ExecutionProgress` is synchronous and does no I/O: the engine asks it what to start, tells
it what finished, and collects the store operations (`pending_ops`) it queued, which the
engine commits in one batch before starting anything those changes unlocked. Keeping the
bookkeeping here and the asyncio plumbing in `engine.py` makes both readable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatosx.agents.base import ProviderCall
from automatosx.definition.graph import ReadySet, WorkflowGraph
from automatosx.definition.models import AgentSpec, StepSpec, WorkflowDefinition
from automatosx.definition.templates import render
from automatosx.errors import StepError, ValidationIssue, WorkflowValidationError
from automatosx.runtime.attempts import RetryRules, retry_rules
from automatosx.runtime.recovery import RecoveredProgress
from automatosx.runtime.scheduler import SlotScheduler
from automatosx.runtime.step_attempt import AttemptOutcome, compile_output_schema
from automatosx.store.records import AppendEvent, FinishStepAttempt, StartStepAttempt, WriteOp

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class StepPlan:
    """What never changes about a step during a run."""

    spec: StepSpec
    agent_name: str
    agent: AgentSpec
    rules: RetryRules
    timeout_s: float | None
    validator: Validator | None


@dataclass(frozen=True)
class Retry:
    step_key: str
    delay_s: float


class ExecutionProgress:
    def __init__(
        self,
        *,
        execution_id: str,
        definition: WorkflowDefinition,
        graph: WorkflowGraph,
        plans: Mapping[str, StepPlan],
        context: dict[str, Any],
        recovered: RecoveredProgress | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.workdir = workdir or Path.cwd()
        self.definition = definition
        self.graph = graph
        self.context = context
        self.plans = plans
        recovered = recovered or RecoveredProgress()
        self.outputs: dict[str, Any] = dict(recovered.outputs)
        self.empty_steps: set[str] = set(recovered.empty_steps)
        self.failed_steps: dict[str, str] = dict(recovered.failed_steps)
        self.skipped_steps: set[str] = set(recovered.skipped_steps)
        self.attempts: dict[str, int] = dict(recovered.last_attempt)
        self.failures: dict[str, int] = dict(recovered.failures)
        self.ready = ReadySet(graph, done=[*self.outputs, *self.empty_steps])
        config = definition.config
        self.scheduler = SlotScheduler(
            config.parallelism, [s.key for s in definition.steps if not s.parallel]
        )
        self.pending_ops: list[WriteOp] = []
        self.stop_starting = False  # pause or terminal failure: nothing new starts
        self.fatal_failure: str | None = None  # a failure that ends the run now
        for key in list(self.failed_steps):
            self._skip_downstream(key, already_failed=True, at=time.time())
            if not config.continue_on_error:
                self.fatal_failure = f"step '{key}' failed: {self.failed_steps[key]}"
                self.stop_starting = True

    # ---- starting ----

    def start_ready(self, now: float) -> list[ProviderCall]:
        """Queue the start of every step that may start now; the calls to launch after the
        queued operations are committed."""
        calls: list[ProviderCall] = []
        while not self.stop_starting:
            newly = self.ready.take_ready()
            if newly:
                self.scheduler.add_ready(newly)
            startable = self.scheduler.take_startable()
            if not startable:
                break
            for key in startable:
                call = self.begin_attempt(key, now)
                if call is not None:
                    calls.append(call)
        return calls

    def begin_attempt(self, key: str, now: float) -> ProviderCall | None:
        """The next attempt of a step holding a slot; None if its prompt cannot render (the
        attempt is then recorded as failed with `template_error`)."""
        plan = self.plans[key]
        attempt = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempt
        providers = plan.agent.provider_order()
        self.pending_ops.append(
            StartStepAttempt(
                key, attempt, plan.agent_name, providers[0] if providers else None, now
            )
        )
        self.pending_ops.append(
            AppendEvent("step_started", key, {"attempt": attempt, "agent": plan.agent_name}, now)
        )
        try:
            prompt = render(
                plan.spec.prompt,
                context=self.context,
                step_outputs=self.outputs,
                empty_steps=self.empty_steps,
            )
        except StepError as error:
            self.record(AttemptOutcome(key, attempt, now, now, error=error))
            return None
        return ProviderCall(
            execution_id=self.execution_id,
            step_key=key,
            attempt=attempt,
            agent_name=plan.agent_name,
            agent=plan.agent,
            prompt=prompt,
            context=self.context,
            timeout_s=plan.timeout_s,
            output_schema=plan.spec.output_schema,
            workdir=self.workdir,
        )

    # ---- finishing ----

    def record(self, outcome: AttemptOutcome) -> Retry | None:
        """Record a finished attempt; returns the retry to schedule, if any."""
        key, attempt, at = outcome.step_key, outcome.attempt, outcome.finished_at
        duration_ms = int(max(0.0, at - outcome.started_at) * 1000)
        if outcome.result is not None:
            result = outcome.result
            self.outputs[key] = result.output
            self.pending_ops.append(
                FinishStepAttempt(
                    key,
                    attempt,
                    "completed",
                    at,
                    output=result.output,
                    provider=result.provider,
                    model=result.model,
                    tokens_in=result.tokens_in,
                    tokens_out=result.tokens_out,
                    cost_usd=result.cost_usd,
                )
            )
            self.pending_ops.append(
                AppendEvent(
                    "step_completed",
                    key,
                    {"attempt": attempt, "durationMs": duration_ms, "provider": result.provider},
                    at,
                )
            )
            self.scheduler.release(key)
            self.ready.mark_done(key)
            return None
        error = outcome.error or StepError("provider_error", "attempt failed without an error")
        failures = self.failures.get(key, 0) + 1
        self.failures[key] = failures
        self.pending_ops.append(
            FinishStepAttempt(
                key, attempt, "failed", at, error_kind=error.kind, error_message=error.message
            )
        )
        plan = self.plans[key]
        if plan.rules.may_retry(error.kind, failures):
            if self.stop_starting:  # pausing: the retry happens on resume
                self.scheduler.release(key)
                return None
            delay_s = plan.rules.delay_before_retry(failures)
            if error.retry_after_s:
                delay_s = max(delay_s, error.retry_after_s)
            self.pending_ops.append(
                AppendEvent(
                    "step_retrying",
                    key,
                    {
                        "attempt": attempt + 1,
                        "failedAttempt": attempt,
                        "delayMs": int(delay_s * 1000),
                        "errorKind": error.kind,
                        "error": error.message,
                    },
                    at,
                )
            )
            return Retry(key, delay_s)
        self.pending_ops.append(
            AppendEvent(
                "step_failed",
                key,
                {
                    "attempt": attempt,
                    "errorKind": error.kind,
                    "error": error.message,
                    "durationMs": duration_ms,
                    "optional": plan.spec.optional,
                },
                at,
            )
        )
        self.scheduler.release(key)
        if plan.spec.optional:
            self.empty_steps.add(key)
            self.ready.mark_done(key)
            return None
        self.failed_steps[key] = f"{error.kind}: {error.message}"
        if self.definition.config.continue_on_error:
            self._skip_downstream(key, already_failed=False, at=at)
        else:
            self.fatal_failure = f"step '{key}' failed: {error.kind}: {error.message}"
            self.stop_starting = True
        return None

    def _skip_downstream(self, key: str, *, already_failed: bool, at: float) -> None:
        if already_failed:
            dropped = self.ready.drop({key, *self.graph.downstream(key)})
            dropped = [k for k in dropped if k != key]
        else:
            dropped = self.ready.mark_failed(key)
        self.scheduler.discard(dropped)
        for skipped in dropped:
            if skipped in self.skipped_steps:
                continue
            self.skipped_steps.add(skipped)
            attempt = self.attempts.get(skipped, 0) + 1
            reason = f"upstream step '{key}' failed"
            self.pending_ops.append(
                FinishStepAttempt(skipped, attempt, "skipped", at, error_message=reason)
            )
            self.pending_ops.append(
                AppendEvent("step_skipped", skipped, {"reason": reason, "failedStep": key}, at)
            )

    def record_cancelled(self, key: str, attempt: int, at: float, reason: str) -> None:
        """A step stopped by cancel/timeout/failure elsewhere (or caught in its backoff)."""
        self.pending_ops.append(
            FinishStepAttempt(
                key, attempt, "cancelled", at, error_kind="cancelled", error_message=reason
            )
        )
        self.pending_ops.append(
            AppendEvent("step_cancelled", key, {"attempt": attempt, "reason": reason}, at)
        )
        self.scheduler.release(key)

    # ---- views ----

    def take_ops(self) -> list[WriteOp]:
        ops, self.pending_ops = self.pending_ops, []
        return ops

    def completed_steps(self) -> list[str]:
        return [k for k in self.graph.topological_order if k in self.outputs]

    def unfinished_steps(self) -> list[str]:
        """Steps that still have to run (running ones included), in topological order."""
        settled = self.outputs.keys() | self.empty_steps | self.failed_steps.keys()
        return [
            k
            for k in self.graph.topological_order
            if k not in settled and k not in self.skipped_steps
        ]


def plan_steps(
    definition: WorkflowDefinition, agents: Mapping[str, AgentSpec]
) -> dict[str, StepPlan]:
    """Resolve each step's agent, retry rules, timeout and output validator once."""
    plans: dict[str, StepPlan] = {}
    issues: list[ValidationIssue] = []
    for index, step in enumerate(definition.steps):
        agent = agents[step.agent]
        validator = None
        if step.output_schema is not None:
            from jsonschema.exceptions import SchemaError

            try:
                validator = compile_output_schema(step.output_schema)
            except SchemaError as exc:
                issues.append(
                    ValidationIssue(f"steps[{index}].outputSchema", f"invalid: {exc.message}")
                )
        timeout_ms = step.timeout_ms or agent.timeout_ms
        plans[step.key] = StepPlan(
            spec=step,
            agent_name=step.agent,
            agent=agent,
            rules=retry_rules(step, definition.config),
            timeout_s=timeout_ms / 1000 if timeout_ms else None,
            validator=validator,
        )
    if issues:
        raise WorkflowValidationError(issues)
    return plans
