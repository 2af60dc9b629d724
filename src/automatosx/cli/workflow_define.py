"""`ax workflow validate | graph | schema`: what a workflow file *is*, without running it.

Problems in a file are printed one `error:` line per problem (like a compiler), each starting
with the file name, so every mistake is visible in one run; the exit code is 2.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from automatosx.cli.apps import workflow_app
from automatosx.cli.output import OutputFormat, console, neutralise, print_json

if TYPE_CHECKING:
    from automatosx.definition.graph import WorkflowGraph
    from automatosx.definition.models import StepSpec, WorkflowDefinition
    from automatosx.errors import WorkflowValidationError


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


FILE_ARGUMENT = typer.Argument(..., help="Workflow file (YAML or JSON).", show_default=False)


def print_validation_error(exc: WorkflowValidationError) -> None:
    """Every issue as its own `error:` line on stderr, each naming the file."""
    for line in exc.lines():
        sys.stderr.write(f"error: {neutralise(line)}\n")
    sys.stderr.flush()


def load_checked(file: Path) -> tuple[WorkflowDefinition, WorkflowGraph]:
    """The definition and its graph; raises WorkflowValidationError with every issue."""
    from automatosx.definition.graph import build_graph
    from automatosx.definition.loader import load_workflow

    definition = load_workflow(file)
    return definition, build_graph(definition)


def _check_agents(file: Path, definition: WorkflowDefinition) -> None:
    """What `run` checks before starting: every step's agent exists and has a usable
    provider, and every outputSchema is a valid JSON Schema; the same of every sub-workflow
    file it runs (each loaded, its problems named with its path, cycles of files refused)."""
    from automatosx.definition.subworkflows import load_subworkflows
    from automatosx.errors import WorkflowValidationError
    from automatosx.runtime.preparation import prepare_workflow

    subworkflows = load_subworkflows(definition, file)
    try:
        prepare_workflow(definition, subworkflows=subworkflows)
    except WorkflowValidationError as exc:
        raise WorkflowValidationError(exc.issues, source=exc.source or str(file)) from None


@workflow_app.command("validate")
def validate_command(
    file: Path = FILE_ARGUMENT,
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="Output format."),
) -> int:
    """Check a workflow file without running it; print its steps by DAG level."""
    from automatosx.errors import WorkflowValidationError

    try:
        definition, graph = load_checked(file)
        _check_agents(file, definition)
    except WorkflowValidationError as exc:
        if format is OutputFormat.json:
            errors = [{"path": i.path, "message": i.message} for i in exc.issues]
            print_json({"valid": False, "file": str(file), "errors": errors})
        print_validation_error(exc)
        return 2
    summary = _summary(file, definition, graph)
    if format is OutputFormat.json:
        print_json(summary)
    else:
        _print_summary(summary)
    for warning in summary["warnings"]:
        line = f"warning: {file}: {warning['path']}: {warning['message']}"
        sys.stderr.write(neutralise(line) + "\n")
    return 0


def secret_warnings(definition: WorkflowDefinition) -> list[dict[str, str]]:
    """Literal secrets in inline agents' `env` (SPEC section 4): never stored, so a resume
    must find them in its own environment; `${NAME}` says so in the file."""
    from automatosx.agents.agent_env import literal_secret_names

    return [
        {
            "path": f"agents.{agent}.env.{name}",
            "message": (
                f"a literal secret: executions store it as *** and a resume needs {name} set "
                f"in its shell; write {name}: ${{{name}}} to take it from the environment"
            ),
        }
        for agent, spec in definition.agents.items()
        for name in literal_secret_names(spec.env)
    ]


@workflow_app.command("graph")
def graph_command(
    file: Path = FILE_ARGUMENT,
    format: GraphFormat = typer.Option(GraphFormat.mermaid, "--format", help="Output format."),
) -> int:
    """Print the dependency graph as Mermaid, Graphviz DOT or JSON."""
    from automatosx.errors import WorkflowValidationError

    try:
        definition, graph = load_checked(file)
    except WorkflowValidationError as exc:
        print_validation_error(exc)
        return 2
    if format is GraphFormat.json:
        print_json(graph_document(definition, graph))
    elif format is GraphFormat.dot:
        sys.stdout.write(neutralise(_dot(definition, graph)))
    else:
        sys.stdout.write(neutralise(_mermaid(definition, graph)))
    return 0


@workflow_app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the workflow file format (for editors' YAML plugins)."""
    from automatosx.definition.serialize import workflow_json_schema

    print_json(workflow_json_schema())


def graph_document(definition: WorkflowDefinition, graph: WorkflowGraph) -> dict[str, Any]:
    path, _ = graph.critical_path()
    return {
        "workflow": definition.name,
        "nodes": [
            {
                "stepKey": step.key,
                "agent": step.agent,
                "does": step.does,
                "dependencies": list(graph.dependencies[step.key]),
                "dependents": list(graph.dependents[step.key]),
                "level": graph.level_of(step.key),
                "optional": step.optional,
                "if": step.condition,
                "forEach": _for_each_document(step),
            }
            for step in definition.steps
        ],
        "levels": [list(level) for level in graph.levels],
        "topologicalOrder": list(graph.topological_order),
        "criticalPath": path,
    }


def _summary(file: Path, definition: WorkflowDefinition, graph: WorkflowGraph) -> dict[str, Any]:
    from automatosx.definition.templates import context_names
    from automatosx.runtime.preparation import agent_uses

    path, _ = graph.critical_path()
    return {
        "valid": True,
        "file": str(file),
        "name": definition.name,
        "version": definition.version,
        "description": definition.description,
        "steps": len(definition.steps),
        "agents": sorted({name for _, name in agent_uses(definition)}),
        "inlineAgents": sorted(definition.agents),
        "contextInputs": sorted(context_names(definition)),
        "levels": [list(level) for level in graph.levels],
        "topologicalOrder": list(graph.topological_order),
        "criticalPath": path,
        "conditions": {s.key: s.condition for s in definition.steps if s.condition},
        "forEach": {s.key: _for_each_document(s) for s in definition.steps if s.for_each},
        "subworkflows": {s.key: s.workflow for s in definition.steps if s.workflow},
        "warnings": secret_warnings(definition),
    }


def _for_each_document(step: StepSpec) -> dict[str, Any] | None:
    if step.for_each is None:
        return None
    return {
        "items": step.for_each.items,
        "as": step.for_each.as_,
        "maxParallel": step.for_each.max_parallel,
    }


def step_note(step: StepSpec) -> str:
    """How a step is dynamic, in a few words (validate's listing, graph labels)."""
    return _dynamic_note(step.condition, _for_each_document(step))


NOTE_EXPRESSION_CHARS = 60


def _dynamic_note(condition: str | None, for_each: dict[str, Any] | None) -> str:
    notes = []
    if for_each is not None:
        limit = f", {for_each['maxParallel']} at a time" if for_each["maxParallel"] else ""
        notes.append(f"for each {for_each['as']} in {_shown(for_each['items'])}{limit}")
    if condition:
        notes.append(f"if {_shown(condition)}")
    return "; ".join(notes)


def _shown(expression: str) -> str:
    """An expression as a listing shows it: on one line, control characters escaped, at most
    NOTE_EXPRESSION_CHARS characters (the document has it whole)."""
    text = " ".join(expression.split())
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if len(text) > NOTE_EXPRESSION_CHARS:
        text = text[: NOTE_EXPRESSION_CHARS - 1] + "…"
    return text


def counted(number: int, noun: str) -> str:
    """`1 step`, `2 steps`: the summary line reads as English for one as for many."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape

    levels = summary["levels"]
    lines: list[str] = []  # printed at once: a 10,000-step file has 1,000 level lines
    say = lines.append

    say(
        f"[green]✓[/green] {escape(summary['file'])}: workflow [bold]{summary['name']}[/bold] "
        f"{escape(summary['version'])} is valid: {counted(summary['steps'], 'step')} in "
        f"{counted(len(levels), 'level')}"
    )
    if summary["description"]:
        say(f"  {escape(summary['description'])}")
    conditions, fan_outs = summary["conditions"], summary["forEach"]
    notes = {
        key: _dynamic_note(conditions.get(key), fan_outs.get(key))
        for key in conditions.keys() | fan_outs.keys()
    }
    for number, level in enumerate(levels):
        shown = [escape(f"{key} ({notes[key]})") if key in notes else key for key in level]
        say(f"  level {number}: {', '.join(shown)}")
    say(f"  critical path: {' -> '.join(summary['criticalPath'])}")
    say(f"  agents: {', '.join(summary['agents'])}")
    inputs = summary["contextInputs"]
    say(f"  context inputs: {', '.join(inputs) if inputs else '(none)'}")
    runs = summary["subworkflows"]
    if runs:
        say("  sub-workflows: " + ", ".join(escape(f"{k} -> {f}") for k, f in runs.items()))
    console.print("\n".join(lines), soft_wrap=True)


def _mermaid(definition: WorkflowDefinition, graph: WorkflowGraph) -> str:
    """A forEach step is one node with the stacked shape (`[[...]]`), its fan-out in the
    label; a condition is in the label too."""
    ids = {step.key: f"s{i}" for i, step in enumerate(definition.steps)}
    lines = ["flowchart TD"]
    for step in definition.steps:
        label = f"{step.key}<br/><small>{_mermaid_text(step.does)}</small>"
        note = step_note(step)
        if note:
            label += f"<br/><small>{_mermaid_text(note)}</small>"
        shape = ('[["', '"]]') if step.for_each is not None else ('["', '"]')
        lines.append(f"    {ids[step.key]}{shape[0]}{label}{shape[1]}")
    for step in definition.steps:
        for dep in graph.dependencies[step.key]:
            lines.append(f"    {ids[dep]} --> {ids[step.key]}")
    optional = [ids[s.key] for s in definition.steps if s.optional]
    if optional:
        lines.append("    classDef optional stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(optional)} optional")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _dot(definition: WorkflowDefinition, graph: WorkflowGraph) -> str:
    """A forEach step is a stacked box (`box3d`) with its fan-out in the label."""
    name = definition.name.replace('"', "")
    lines = [f'digraph "{name}" {{', "    rankdir=TB;", "    node [shape=box];"]
    for step in definition.steps:
        style = ", style=dashed" if step.optional else ""
        if step.for_each is not None:
            style += ", shape=box3d"
        label = f"{step.key}\\n{_dot_text(step.does)}"
        note = step_note(step)
        if note:
            label += f"\\n{_dot_text(note)}"
        lines.append(f'    "{step.key}" [label="{label}"{style}];')
    for step in definition.steps:
        for dep in graph.dependencies[step.key]:
            lines.append(f'    "{dep}" -> "{step.key}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
