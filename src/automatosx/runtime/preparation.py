"""Everything checked before an execution starts: agents, providers, context, schemas.

A run or resume must fail with a clear validation error (exit 2) before anything executes
when a step names an unknown agent, an agent has no usable provider, a context placeholder
has no value or an `outputSchema` is not a valid schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.definition.graph import WorkflowGraph, build_graph
from automatosx.definition.models import AgentSpec, WorkflowDefinition
from automatosx.errors import WorkflowValidationError
from automatosx.runtime.progress import StepPlan, plan_steps


@dataclass(frozen=True)
class PreparedWorkflow:
    definition: WorkflowDefinition
    graph: WorkflowGraph
    router: Router
    plans: dict[str, StepPlan]
    workdir: Path


def prepare_workflow(
    definition: WorkflowDefinition, *, workdir: Path | None = None, router: Router | None = None
) -> PreparedWorkflow:
    """Resolve every step's agent and provider; raise one error listing every problem."""
    workdir = workdir or Path.cwd()
    graph = build_graph(definition)
    if router is None:
        registry = AgentRegistry.load(workdir=workdir, inline=definition.agents)
        router = Router(registry)
    issues = router.check_agents(
        (f"steps[{index}].agent", step.agent) for index, step in enumerate(definition.steps)
    )
    if issues:
        raise WorkflowValidationError(issues)
    agents: dict[str, AgentSpec] = {
        step.agent: router.registry.get(step.agent) for step in definition.steps
    }
    plans = plan_steps(definition, agents)
    return PreparedWorkflow(definition, graph, router, plans, workdir)
