"""Everything checked before an execution starts: agents, providers, context, schemas.

A run or resume must fail with a clear validation error (exit 2) before anything executes
when a step names an unknown agent, an agent has no usable provider or an `env` value it
cannot resolve (`${NAME}` unset), a context placeholder has no value or an `outputSchema`
is not a valid schema. Agents and providers are resolved against the execution's working
directory (its `.automatosx/agents/`, relative programs and modules), wherever the command
was typed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from automatosx.agents.agent_env import env_issues
from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.definition.graph import WorkflowGraph, build_graph
from automatosx.definition.models import AgentSpec, WorkflowDefinition
from automatosx.definition.subworkflows import Subworkflow
from automatosx.errors import ValidationIssue, WorkflowValidationError
from automatosx.runtime.plans import StepPlan, plan_steps


@dataclass(frozen=True)
class PreparedWorkflow:
    definition: WorkflowDefinition
    graph: WorkflowGraph
    router: Router
    plans: dict[str, StepPlan]
    workdir: Path
    # Sub-workflow files by the `workflow:` value as written: as loaded (what the execution
    # stores) and prepared (what a child's runner runs).
    subworkflows: Mapping[str, Subworkflow] = field(default_factory=dict)
    children: Mapping[str, PreparedWorkflow] = field(default_factory=dict)


def agent_uses(definition: WorkflowDefinition) -> Iterator[tuple[str, str]]:
    """(field path, agent name) for every agent a step may use: its agent, or each of its
    `agentChoices` when the agent is a template."""
    for index, step in enumerate(definition.steps):
        if step.agent is None:  # a sub-workflow or an approval: no agent of its own
            continue
        if step.agent_is_template:
            for choice, name in enumerate(step.agent_choices or []):
                yield f"steps[{index}].agentChoices[{choice}]", name
        else:
            yield f"steps[{index}].agent", step.agent


def prepare_workflow(
    definition: WorkflowDefinition,
    *,
    workdir: Path | None = None,
    router: Router | None = None,
    subworkflows: Mapping[str, Subworkflow] | None = None,
) -> PreparedWorkflow:
    """Resolve every step's agent and provider, and those of its sub-workflows (which run
    in the same working directory, each with the agents of its own file); raise one error
    listing every problem."""
    workdir = workdir or Path.cwd()
    if not workdir.is_dir():
        raise WorkflowValidationError(
            [ValidationIssue("workdir", f"the working directory {workdir} does not exist")]
        )
    graph = build_graph(definition)
    if router is None:
        registry = AgentRegistry.load(workdir=workdir, inline=definition.agents)
        router = Router(registry, workdir=workdir)
    uses = list(agent_uses(definition))
    issues = router.check_agents(uses)
    if issues:
        raise WorkflowValidationError(issues)
    agents: dict[str, AgentSpec] = {name: router.registry.get(name) for _, name in uses}
    env_problems = env_issues((f"agents.{name}", name, spec.env) for name, spec in agents.items())
    if env_problems:
        raise WorkflowValidationError(env_problems)
    plans = plan_steps(definition, agents, graph)
    children = _prepare_children(definition, subworkflows or {}, workdir, {})
    return PreparedWorkflow(definition, graph, router, plans, workdir, subworkflows or {}, children)


def _prepare_children(
    definition: WorkflowDefinition,
    subworkflows: Mapping[str, Subworkflow],
    workdir: Path,
    done: dict[int, PreparedWorkflow],
) -> dict[str, PreparedWorkflow]:
    """Each sub-workflow prepared once (a file several steps run shares one), its problems
    reported at the step that names it, prefixed with its path."""
    children: dict[str, PreparedWorkflow] = {}
    issues: list[ValidationIssue] = []
    for index, step in enumerate(definition.steps):
        written = step.workflow
        child = None if written is None or written in children else subworkflows.get(written)
        if written is None or child is None:
            continue
        prepared = done.get(id(child))
        if prepared is None:
            try:
                prepared = prepare_workflow(
                    child.definition, workdir=workdir, subworkflows=child.children
                )
            except WorkflowValidationError as exc:
                where = f"steps[{index}].workflow"
                issues += [ValidationIssue(where, f"{child.source}: {i}") for i in exc.issues]
                continue
            done[id(child)] = prepared
        children[written] = prepared
    if issues:
        raise WorkflowValidationError(issues)
    return children
