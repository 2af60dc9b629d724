"""What never changes about a step during a run: its agent, retry rules, timeout and output
validator, resolved once before anything runs (a bad `outputSchema` is a validation error
then, not a failure mid-run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from automatosx.definition.models import AgentSpec, StepSpec, WorkflowDefinition
from automatosx.errors import ValidationIssue, WorkflowValidationError
from automatosx.runtime.attempts import RetryRules, retry_rules
from automatosx.runtime.step_attempt import compile_output_schema

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class StepPlan:
    """What never changes about a step during a run."""

    spec: StepSpec
    position: int  # its index in the file
    agent_name: str
    agent: AgentSpec
    rules: RetryRules
    timeout_s: float | None
    validator: Validator | None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def first_provider(self) -> str | None:
        providers = self.agent.provider_order()
        return providers[0] if providers else None


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
            position=index,
            agent_name=step.agent,
            agent=agent,
            rules=retry_rules(step, definition.config),
            timeout_s=timeout_ms / 1000 if timeout_ms else None,
            validator=validator,
        )
    if issues:
        raise WorkflowValidationError(issues)
    return plans
