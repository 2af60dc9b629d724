"""Turning a plain document into a `WorkflowDefinition`, reporting every problem at once.

Field rules come from the pydantic models; the rules that span fields (step keys unique,
dependencies known, no cycles, placeholders naming upstream steps, agents able to run) are
checked here on the *raw* document, so a file with a wrong type in `config` still gets its
dependency mistakes reported in the same run instead of one fix-and-retry at a time.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, TypeGuard

from pydantic import BaseModel, ValidationError

from automatosx.definition.graph import WorkflowGraph, graph_from_dependencies, structure_issues
from automatosx.definition.models import (
    AgentSpec,
    ApprovalSpec,
    CacheSpec,
    ForEachSpec,
    RetryPolicy,
    StepSpec,
    WorkflowConfig,
    WorkflowDefinition,
)
from automatosx.definition.templates import extract_placeholders
from automatosx.errors import ValidationIssue, WorkflowValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

MAX_ISSUES = 100

_NESTED_MODELS: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (WorkflowDefinition, "config"): WorkflowConfig,
    (WorkflowDefinition, "steps"): StepSpec,
    (WorkflowDefinition, "agents"): AgentSpec,
    (StepSpec, "retryPolicy"): RetryPolicy,
    (StepSpec, "forEach"): ForEachSpec,
    (StepSpec, "approval"): ApprovalSpec,
    (StepSpec, "cache"): CacheSpec,
    (WorkflowConfig, "cache"): CacheSpec,
}
_NAME_RULES = {
    "key": "a step key is 1-64 letters, digits, '_' or '-'",
    "dependencies": "a step key is 1-64 letters, digits, '_' or '-'",
    "name": "a workflow name is 1-128 letters, digits, '.', '_' or '-'",
    "agent": "an agent name is 1-64 letters, digits, '.', '_' or '-'",
    "agents": "an agent name is 1-64 letters, digits, '.', '_' or '-'",
    "callable": "a callable is written 'package.module:function'",
}
_INTERNAL_LOC = re.compile(r"^[a-z-]+\[.*\]$")


def validate_document(
    document: Any, *, source: str | None = None, written_version: str | None = None
) -> WorkflowDefinition:
    """The definition in `document`, or WorkflowValidationError listing every issue found.

    `written_version`: the `version` as the file spells it, when the loader found it, so the
    hint for an unquoted number quotes what the author typed (`1.10`, which YAML reads as
    1.1)."""
    if not isinstance(document, dict):
        what = "empty" if document is None else f"a {_json_type(document)}"
        raise WorkflowValidationError(
            [ValidationIssue("", f"the file is {what}; expected a map with 'name' and 'steps'")],
            source=source,
        )
    issues: list[ValidationIssue] = []
    definition: WorkflowDefinition | None = None
    try:
        definition = WorkflowDefinition.model_validate(document, by_alias=True, by_name=False)
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc))
    issues.extend(cross_field_issues(document))
    version = document.get("version")
    if is_number(version):
        hint = ValidationIssue("version", version_hint(version, written_version))
        issues = [hint if issue.path == "version" else issue for issue in issues]
    if issues or definition is None:
        if len(issues) > MAX_ISSUES:
            more = len(issues) - MAX_ISSUES
            issues = [*issues[:MAX_ISSUES], ValidationIssue("", f"... and {more} more problems")]
        raise WorkflowValidationError(issues, source=source)
    return definition


def is_number(value: object) -> TypeGuard[int | float]:
    """A YAML or JSON number (`true` is a bool, not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def version_hint(given: float, written: str | None) -> str:
    """Why `version: 1.10` is refused rather than stored as "1.1": YAML (and JSON) read an
    unquoted version as a number, which loses what was written (1.10 and 1.1 are the same
    number, YAML 1.1 reads 010 as 8). Every number is refused, even one that would read
    back the same (`1`, `2.5`), so a file never depends on how a number happens to print."""
    written = written or str(given)
    lost = f" (unquoted, {written} is read as {given})" if written != str(given) else ""
    return f'a version is text, not a number{lost}: quote it, as in version: "{written}"'


def pydantic_issues(exc: ValidationError) -> list[ValidationIssue]:
    return [_issue_of(error) for error in exc.errors(include_url=False)]


def _issue_of(error: ErrorDetails) -> ValidationIssue:
    loc = [part for part in error["loc"] if not _is_internal(part)]
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    path = format_path(loc)
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        if [str(part) for part in loc[-2:]] == ["forEach", "forEach"]:
            return ValidationIssue(
                path,
                "a forEach cannot be nested: run a sub-workflow (a `workflow:` step) for "
                "each item, and give that workflow its own forEach",
            )
        return ValidationIssue(path, _unknown_field(loc))
    if kind == "string_pattern_mismatch":
        field = next((p for p in reversed(loc) if isinstance(p, str) and p in _NAME_RULES), "")
        if is_key and loc and loc[0] == "agents":
            field = "agents"
        rule = _NAME_RULES.get(str(field), error["msg"])
        return ValidationIssue(path, f"invalid name {_short(given)}: {rule}")
    return ValidationIssue(path, error["msg"])


def _is_internal(part: str | int) -> bool:
    """Pydantic adds union-member names (`list[literal[...]]`) to locations; users never
    wrote those, so they are left out of paths."""
    return isinstance(part, str) and part != "[key]" and bool(_INTERNAL_LOC.match(part))


def _unknown_field(loc: list[str | int]) -> str:
    model: type[BaseModel] = WorkflowDefinition
    for part in loc[:-1]:
        if isinstance(part, str):
            model = _NESTED_MODELS.get((model, part), model)
    allowed = [field.alias or name for name, field in model.model_fields.items()]
    name = str(loc[-1]) if loc else ""
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean '{close[0]}'?)"
    return "unknown field (allowed: " + ", ".join(allowed) + ")"


def format_path(loc: list[str | int] | tuple[str | int, ...]) -> str:
    """`('steps', 1, 'retryPolicy')` -> `steps[1].retryPolicy`; odd keys are quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[\w-]+", part):
            text += f".{part}" if text else part
        else:
            text += "[" + _short(part) + "]"
    return text


def cross_field_issues(document: dict[str, Any]) -> list[ValidationIssue]:
    """The rules spanning fields, checked on whatever parts of the document are well formed."""
    issues = _agent_issues(document.get("agents"))
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list):
        return issues
    steps = [_key_and_dependencies(i, raw) for i, raw in enumerate(raw_steps)]
    structure = structure_issues(steps)
    issues += structure
    keys = [key for key, _ in steps]
    if len(set(keys)) < len(keys):
        return issues  # which step a key means is ambiguous: stop at the structure issues
    if structure:  # leave out the bad dependencies so cycles and placeholders still get checked
        known = set(keys)
        steps = [(k, [d for d in dict.fromkeys(ds) if d in known and d != k]) for k, ds in steps]
    try:
        graph = graph_from_dependencies(steps)
    except WorkflowValidationError as exc:
        return issues + exc.issues
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, dict) and isinstance(raw.get("prompt"), str):
            issues.extend(_placeholder_issues(i, steps[i][0], raw["prompt"], graph))
        if isinstance(raw, dict):
            issues.extend(_other_template_issues(i, steps[i][0], raw, graph))
            issues.extend(_workflow_step_issues(i, raw))
        if isinstance(raw, dict) and isinstance(raw.get("if"), str):
            issues.extend(_expression_issues(f"steps[{i}].if", steps[i][0], raw["if"], graph))
        if isinstance(raw, dict):
            issues.extend(_agent_choice_issues(i, steps[i][0], raw, graph))
            issues.extend(_for_each_issues(i, steps[i][0], raw, graph))
            issues.extend(_cache_issues(i, raw))
    return issues


def _cache_issues(index: int, raw: dict[str, Any]) -> list[ValidationIssue]:
    """Only an agent step's answer can come from the result cache: a person's decision or
    a child execution is never replayed."""
    if raw.get("cache") in (None, False):
        return []
    kind = "an approval" if "approval" in raw else "a sub-workflow" if "workflow" in raw else ""
    if not kind:
        return []
    return [
        ValidationIssue(
            f"steps[{index}].cache",
            f"cache is for agent steps: {kind} step is never answered from the cache",
        )
    ]


def _other_template_issues(
    index: int, key: str, raw: dict[str, Any], graph: WorkflowGraph
) -> list[ValidationIssue]:
    """The templates besides the prompt follow its rules: a sub-workflow's `with` values
    (strings at any depth: `with.reviews`, `with.files[0]`) and an approval's message."""
    issues: list[ValidationIssue] = []
    with_ = raw.get("with")
    if isinstance(with_, dict):
        for path, template in _strings_at(with_, ["with"]):
            issues += _placeholder_issues(index, key, template, graph, field=format_path(path))
    approval = raw.get("approval")
    if isinstance(approval, dict) and isinstance(approval.get("message"), str):
        issues += _placeholder_issues(
            index, key, approval["message"], graph, field="approval.message"
        )
    return issues


def _workflow_step_issues(index: int, raw: dict[str, Any]) -> list[ValidationIssue]:
    """What a sub-workflow step does not take, rather than silently ignore: its child's
    steps retry and its child's `config.timeout` bounds it."""
    if "workflow" not in raw:
        return []
    refused = {
        "retryPolicy": "a sub-workflow step is not retried (a failed child stays failed): "
        "give the child's own steps a retryPolicy instead",
        "timeoutMs": "a sub-workflow step has no attempt timeout: set config.timeout in the "
        "child's file to bound the whole child",
    }
    return [
        ValidationIssue(f"steps[{index}].{field}", message)
        for field, message in refused.items()
        if field in raw
    ]


def _strings_at(value: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    """(path, text) for every string inside `value`, at any depth."""
    if isinstance(value, str):
        return [(path, value)]
    found: list[tuple[list[str | int], str]] = []
    if isinstance(value, dict):
        for name, item in value.items():
            found += _strings_at(item, [*path, str(name)])
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _strings_at(item, [*path, position])
    return found


def _for_each_issues(
    index: int, key: str, raw: dict[str, Any], graph: WorkflowGraph
) -> list[ValidationIssue]:
    """A forEach's items expression, its item name, and what it cannot be combined with."""
    for_each = raw.get("forEach")
    if not isinstance(for_each, dict):
        return []
    path = f"steps[{index}].forEach"
    issues: list[ValidationIssue] = []
    if isinstance(for_each.get("items"), str):
        issues += _expression_issues(f"{path}.items", key, for_each["items"], graph)
    name = for_each.get("as", "item")
    if name == "index":
        issues.append(ValidationIssue(f"{path}.as", "'index' is always the item's index"))
    elif isinstance(name, str) and name in graph.dependencies:
        issues.append(
            ValidationIssue(f"{path}.as", f"'{name}' is also a step key: pick another item name")
        )
    if raw.get("parallel") is False:
        issues.append(
            ValidationIssue(
                f"steps[{index}].parallel",
                "a forEach step runs its items side by side: use forEach.maxParallel: 1 to run "
                "them one at a time",
            )
        )
    return issues


def _agent_choice_issues(
    index: int, key: str, raw: dict[str, Any], graph: WorkflowGraph
) -> list[ValidationIssue]:
    """A template agent needs `agentChoices` (the names it may render to), and only a
    template agent has them; its placeholders follow the prompt's rules."""
    agent, choices = raw.get("agent"), raw.get("agentChoices")
    if not isinstance(agent, str):
        return []
    if "{{" not in agent:
        if choices is not None:
            return [
                ValidationIssue(
                    f"steps[{index}].agentChoices",
                    "agentChoices is for an agent template such as '{{triage.reviewer}}'; "
                    f"this step's agent is the fixed name {agent!r}",
                )
            ]
        return []
    issues = _placeholder_issues(index, key, agent, graph, field="agent")
    if not choices:
        issues.append(
            ValidationIssue(
                f"steps[{index}].agent",
                f"the agent template {agent!r} needs agentChoices: the agents it may render to",
            )
        )
    return issues


def _expression_issues(
    path: str, key: str, source: str, graph: WorkflowGraph
) -> list[ValidationIssue]:
    """A step's CEL expression parses, calls known functions and reads upstream steps."""
    from automatosx.definition.expressions import check_expression  # loads cel-python

    return check_expression(
        source,
        path=path,
        is_upstream=lambda candidate: graph.is_upstream(candidate, key),
        known_steps=frozenset(graph.dependencies),
    )


def _key_and_dependencies(index: int, raw: Any) -> tuple[str, list[str]]:
    """A step's key and dependencies as far as they are readable (bad parts are reported by
    the models; a step without a usable key gets a name no placeholder can match)."""
    if not isinstance(raw, dict):
        return f"<steps[{index}]>", []
    key = raw.get("key")
    deps = raw.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        deps = []
    return (key if isinstance(key, str) else f"<steps[{index}]>"), deps


def _placeholder_issues(
    index: int, key: str, prompt: str, graph: WorkflowGraph, *, field: str = "prompt"
) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    path = f"steps[{index}].{field}"
    reported: set[str] = set()
    for placeholder in extract_placeholders(prompt):
        head = placeholder.head
        if head in reported or (head in graph.dependencies and graph.is_upstream(head, key)):
            continue
        if head == key:
            message = f"{placeholder.raw} refers to step '{key}' itself"
        elif head in graph.dependencies:
            message = (
                f"{placeholder.raw} refers to step '{head}', which is not upstream of '{key}' "
                f"(add '{head}' to its dependencies)"
            )
        elif placeholder.path[:1] == ("result",):
            close = difflib.get_close_matches(head, list(graph.dependencies), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            message = f"{placeholder.raw} refers to unknown step '{head}'{hint}"
        else:
            continue  # a context name, supplied with --context at run time
        reported.add(head)
        issues.append(ValidationIssue(path, message))
    return issues


def _agent_issues(agents: Any) -> list[ValidationIssue]:
    """An inline agent must be able to run: `command` needs its argv, `python` its callable."""
    issues: list[ValidationIssue] = []
    if not isinstance(agents, dict):
        return issues
    for name, spec in agents.items():
        if not isinstance(spec, dict):
            continue
        path = format_path(["agents", str(name)])
        providers = spec.get("providers")
        listed = providers if isinstance(providers, list) else [spec.get("provider")]
        if "provider" in spec and "providers" in spec:
            issues.append(ValidationIssue(path, "give either 'provider' or 'providers', not both"))
        if "command" in listed and not spec.get("command"):
            issues.append(ValidationIssue(path, "provider 'command' needs a non-empty 'command'"))
        if "python" in listed and not spec.get("callable"):
            issues.append(ValidationIssue(path, "provider 'python' needs a 'callable'"))
    return issues


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
