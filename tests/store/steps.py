"""Step transitions for the store tests, built by the runtime's own transition functions
for a workflow (the sample one by default), so the store is tested with exactly the
operations the engine writes."""

from __future__ import annotations

from typing import Any

from automatosx.agents.base import ProviderResult
from automatosx.definition.models import AgentSpec, WorkflowDefinition
from automatosx.errors import StepError
from automatosx.runtime import transitions
from automatosx.runtime.plans import plan_steps
from automatosx.store.records import PutInstance, StepInstanceRecord, WriteOp
from tests.store import sample


class Steps:
    """The instances of one execution, kept up to date with every transition built."""

    def __init__(self, execution_id: str, definition: WorkflowDefinition | None = None) -> None:
        definition = definition or sample.definition()
        agents = {
            step.agent: AgentSpec(provider="command", command=["true"]) for step in definition.steps
        }
        self.plans = plan_steps(definition, agents)
        self.records = {
            key: transitions.new_instance(execution_id, plan) for key, plan in self.plans.items()
        }

    def __getitem__(self, key: str) -> StepInstanceRecord:
        return self.records[key]

    def _keep(self, ops: list[WriteOp]) -> list[WriteOp]:
        for op in ops:
            if isinstance(op, PutInstance):
                self.records[op.instance.key] = op.instance
        return ops

    def start(self, key: str, at: float, *, prompt: str | None = None) -> list[WriteOp]:
        record, plan = self.records[key], self.plans[key]
        return self._keep(transitions.start(record, plan, at, prompt=prompt))

    def succeed(
        self,
        key: str,
        at: float,
        output: Any = None,
        *,
        provider: str = "command",
        model: str | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost_usd: float | None = None,
    ) -> list[WriteOp]:
        result = ProviderResult(output, provider, model, tokens_in, tokens_out, cost_usd)
        return self._keep(transitions.succeed(self.records[key], result, at))

    def fail(
        self,
        key: str,
        at: float,
        kind: str = "provider_error",
        message: str = "failed",
        *,
        delay_s: float = 0.0,
    ) -> list[WriteOp]:
        error = StepError(kind, message)  # type: ignore[arg-type]
        failure = transitions.fail(self.records[key], self.plans[key], error, at, delay_s=delay_s)
        return self._keep(failure.ops)

    def skip(self, key: str, failed_step: str, at: float) -> list[WriteOp]:
        return self._keep(transitions.skip(self.records[key], failed_step, at))

    def cancel(self, key: str, reason: str, at: float) -> list[WriteOp]:
        return self._keep(transitions.cancel(self.records[key], reason, at))

    def created(self) -> list[WriteOp]:
        """Every instance as a new execution stores them (pending)."""
        return [PutInstance(record) for record in self.records.values()]
