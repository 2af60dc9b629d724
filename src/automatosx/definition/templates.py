"""`{{ name }}` placeholders in prompts (SPEC section 3): find them, check them, fill them in.

A placeholder is `{{ head }}` or `{{ head.path.to.value }}`, whitespace allowed inside the
braces; `head` is a step key (its output) or a context name. Anything else between double
braces (`{{ .Name }}`, `{{ a + b }}`) is not a placeholder and stays as literal text, so prompts
may quote other template languages. Rendering is a single pass of plain lookups: it never
evaluates code and never re-reads what it inserted, so an output containing `{{x}}` stays inert.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automatosx.errors import StepError

if TYPE_CHECKING:
    from automatosx.definition.models import StepSpec, WorkflowDefinition

_SEGMENT = r"[\w-]+"
PLACEHOLDER_RE = re.compile(r"\{\{\s*(" + _SEGMENT + r"(?:\." + _SEGMENT + r")*)\s*\}\}")


@dataclass(frozen=True)
class Placeholder:
    """One placeholder: `raw` as written, `head` the step key or context name, `path` the
    keys and list indexes below it (`{{ a.b.0 }}` -> head "a", path ("b", "0"))."""

    raw: str
    head: str
    path: tuple[str, ...]


def extract_placeholders(template: str) -> list[Placeholder]:
    """Every placeholder in `template`, in order (repeats included)."""
    placeholders = []
    for match in PLACEHOLDER_RE.finditer(template):
        head, *path = match.group(1).split(".")
        placeholders.append(Placeholder(match.group(0), head, tuple(path)))
    return placeholders


def step_templates(step: StepSpec) -> list[str]:
    """The templates of a step: its prompt and its agent when that is a template, a
    sub-workflow's `with` values (strings at any depth), an approval's message."""
    if step.workflow is not None:
        return list(_strings_in(step.with_ or {}))
    if step.approval is not None:
        return [step.approval.message]
    templates = [step.prompt or ""]
    if step.agent_is_template and step.agent is not None:
        templates.append(step.agent)
    return templates


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def context_names(definition: WorkflowDefinition) -> set[str]:
    """Heads that are not step keys: the values the execution context must supply."""
    keys = {step.key for step in definition.steps}
    return {
        placeholder.head
        for step in definition.steps
        for template in step_templates(step)
        for placeholder in extract_placeholders(template)
        if placeholder.head not in keys and placeholder.head not in step.local_names
    }


def step_references(definition: WorkflowDefinition) -> dict[str, set[str]]:
    """step key -> the step keys its templates refer to."""
    keys = {step.key for step in definition.steps}
    return {
        step.key: {
            p.head
            for template in step_templates(step)
            for p in extract_placeholders(template)
            if p.head in keys
        }
        for step in definition.steps
    }


def to_text(value: Any) -> str:
    """How a value appears in a prompt: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(
    template: str,
    *,
    context: Mapping[str, Any],
    step_outputs: Mapping[str, Any],
    empty_steps: Collection[str] = (),
    local: Mapping[str, Any] | None = None,
) -> str:
    """Fill every placeholder in `template`.

    `step_outputs` holds the outputs of completed steps, `empty_steps` the keys of steps
    whose placeholders render as "" (optional steps that failed, steps whose condition was
    false), `local` the names a forEach item binds (`item`, `index`), which come first. A
    name or path that cannot be resolved raises `StepError("template_error", ...)` naming
    the placeholder.
    """

    def substitute(match: re.Match[str]) -> str:
        head, *path = match.group(1).split(".")
        return to_text(
            resolve(
                Placeholder(match.group(0), head, tuple(path)),
                context=context,
                step_outputs=step_outputs,
                empty_steps=empty_steps,
                local=local,
            )
        )

    return PLACEHOLDER_RE.sub(substitute, template)


def resolve(
    placeholder: Placeholder,
    *,
    context: Mapping[str, Any],
    step_outputs: Mapping[str, Any],
    empty_steps: Collection[str] = (),
    local: Mapping[str, Any] | None = None,
) -> Any:
    """The value a placeholder stands for (not yet turned into text)."""
    head, path = placeholder.head, placeholder.path
    if local is not None and head in local:
        return _walk(local[head], path, placeholder, f"'{head}'")
    if head in empty_steps:
        return ""
    if head in step_outputs:
        output = step_outputs[head]
        if path and path[0] == "result" and not (isinstance(output, dict) and "result" in output):
            path = path[1:]
        return _walk(output, path, placeholder, f"the output of step '{head}'")
    if head not in context:
        raise StepError(
            "template_error", f"{placeholder.raw}: '{head}' is not in the execution context"
        )
    return _walk(context[head], path, placeholder, f"context value '{head}'")


def _walk(value: Any, path: tuple[str, ...], placeholder: Placeholder, what: str) -> Any:
    for depth, segment in enumerate(path):
        where = ".".join(path[:depth]) or "the top level"
        if isinstance(value, Mapping):
            if segment not in value:
                raise StepError(
                    "template_error",
                    f"{placeholder.raw}: {what} has no key '{segment}' at {where}",
                )
            value = value[segment]
        elif isinstance(value, list):
            if not (segment.isascii() and segment.isdigit()) or int(segment) >= len(value):
                raise StepError(
                    "template_error",
                    f"{placeholder.raw}: {what} has no index '{segment}' at {where} "
                    f"(a list of {len(value)})",
                )
            value = value[int(segment)]
        else:
            raise StepError(
                "template_error",
                f"{placeholder.raw}: {what} is {_kind(value)} at {where}, so it has no '{segment}'",
            )
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"
