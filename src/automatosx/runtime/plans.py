"""What never changes about a step during a run: its agent, retry rules, timeout and output
validator, resolved once before anything runs (a bad `outputSchema` is a validation error
then, not a failure mid-run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from automatosx.definition.graph import WorkflowGraph, build_graph
from automatosx.definition.models import AgentSpec, StepSpec, WorkflowDefinition
from automatosx.errors import ValidationIssue, WorkflowValidationError
from automatosx.runtime.attempts import RetryRules, retry_rules
from automatosx.runtime.cache_policy import CachePolicy, cache_policy
from automatosx.runtime.step_attempt import compile_output_schema

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from automatosx.definition.expressions import Expression


@dataclass(frozen=True)
class ForEachPlan:
    """A forEach step: its items expression (compiled), the item's name, how many of its
    items may run at once."""

    items: Expression
    name: str
    max_parallel: int
    max_items: int


@dataclass(frozen=True)
class StepPlan:
    """What never changes about a step during a run.

    `agents` holds the agents the step may use: its one agent, or, when `agent` is a
    template, each of its `agentChoices` (which one runs is decided when it starts)."""

    spec: StepSpec
    position: int  # its index in the file
    agent_name: str | None  # the agent, or the agent template (None: not an agent step)
    agents: Mapping[str, AgentSpec]
    rules: RetryRules
    validator: Validator | None
    condition: Expression | None = None  # `if`, compiled
    for_each: ForEachPlan | None = None
    cache: CachePolicy | None = None  # None: the result cache never answers it

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def agent(self) -> AgentSpec:
        """The agent of a step whose agent is fixed."""
        assert self.agent_name is not None
        return self.agents[self.agent_name]

    def first_provider(self, agent_name: str) -> str | None:
        providers = self.agents[agent_name].provider_order()
        return providers[0] if providers else None

    def timeout_s(self, agent_name: str) -> float | None:
        """Per attempt: the step's `timeoutMs`, else its agent's."""
        timeout_ms = self.spec.timeout_ms or self.agents[agent_name].timeout_ms
        return timeout_ms / 1000 if timeout_ms else None


def plan_steps(
    definition: WorkflowDefinition,
    agents: Mapping[str, AgentSpec],
    graph: WorkflowGraph | None = None,
) -> dict[str, StepPlan]:
    """Resolve each step's agent, retry rules, timeout, output validator and expressions
    once."""
    graph = graph or build_graph(definition)
    plans: dict[str, StepPlan] = {}
    issues: list[ValidationIssue] = []
    shared_agents: dict[tuple[str, ...], Mapping[str, AgentSpec]] = {}
    for index, step in enumerate(definition.steps):
        condition = None
        if step.condition is not None:
            condition = _expression(step.condition, f"steps[{index}].if", step.key, graph, issues)
        names = step.agent_choices if step.agent_is_template else [step.agent] if step.agent else []
        for_each = None
        if step.for_each is not None:
            items = _expression(
                step.for_each.items, f"steps[{index}].forEach.items", step.key, graph, issues
            )
            if items is not None:
                for_each = ForEachPlan(
                    items=items,
                    name=step.for_each.as_,
                    max_parallel=step.for_each.max_parallel or definition.config.parallelism,
                    max_items=definition.config.max_for_each_items,
                )
        validator = None
        if step.output_schema is not None:
            from jsonschema.exceptions import SchemaError

            try:
                validator = compile_output_schema(step.output_schema)
            except SchemaError as exc:
                issues.append(
                    ValidationIssue(f"steps[{index}].outputSchema", f"invalid: {exc.message}")
                )
        plans[step.key] = StepPlan(
            spec=step,
            position=index,
            agent_name=step.agent,
            agents=_agents_of(tuple(names or ()), agents, shared_agents),
            rules=retry_rules(step, definition.config),
            validator=validator,
            condition=condition,
            for_each=for_each,
            cache=cache_policy(step, definition.config),
        )
    if issues:
        raise WorkflowValidationError(issues)
    return plans


def _agents_of(
    names: tuple[str, ...],
    agents: Mapping[str, AgentSpec],
    shared: dict[tuple[str, ...], Mapping[str, AgentSpec]],
) -> Mapping[str, AgentSpec]:
    """The agents a step may use, one mapping shared by the steps with the same ones (a
    mapping per step was 6% of a 10,000-step run's memory)."""
    found = shared.get(names)
    if found is None:
        found = shared[names] = MappingProxyType({name: agents[name] for name in names})
    return found


def _expression(
    source: str, path: str, key: str, graph: WorkflowGraph, issues: list[ValidationIssue]
) -> Expression | None:
    from automatosx.definition.expressions import compile_expression

    expression, problems = compile_expression(
        source,
        path=path,
        is_upstream=lambda candidate: graph.is_upstream(candidate, key),
        known_steps=frozenset(graph.dependencies),
    )
    issues.extend(problems)
    return expression
