"""Sub-workflow files (SPEC section 8): a `workflow:` step runs another workflow file, named
relative to the file that names it.

Loading a workflow loads every file it reaches, depth first, once each: a missing file, one
that is not a workflow, a cycle of files (`a.yaml -> b.yaml -> a.yaml`) and a child's own
problems are validation errors of the step that names it (`steps[2].workflow`), each child
problem prefixed with the child's path, so `validate` reports the whole tree at once. So is
a `with` that lacks a value the child's templates need (`steps[2].with`).

The loaded tree is stored with the execution that runs it (its own copy, like its
definition), so a resume or a recovery never reads the files again: an edited or deleted
child file cannot change, or break, an execution already under way.

Files are loaded down to the nesting limit (`MAX_NESTING` levels below the top): a step
that would nest deeper fails at run time with `subworkflow_failed`, so nothing deeper is
ever needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.templates import context_names
from automatosx.errors import ValidationIssue, WorkflowValidationError

MAX_NESTING = 8  # levels of children below the top execution; deeper fails at run time
MAX_FILES = 256  # distinct sub-workflow files one workflow may reach


@dataclass(frozen=True)
class Subworkflow:
    """A file a `workflow:` step runs: its definition and, by the `workflow:` value as its
    own steps write it, the files it runs in turn."""

    definition: WorkflowDefinition
    source: str  # the file, as messages name it
    children: Mapping[str, Subworkflow] = field(default_factory=dict)


def load_subworkflows(definition: WorkflowDefinition, path: str | Path) -> dict[str, Subworkflow]:
    """The sub-workflows of `definition`, read from the file at `path`, by the `workflow:`
    value as written; WorkflowValidationError (naming `path`) listing every problem."""
    if not any(step.workflow is not None for step in definition.steps):
        return {}
    top = Path(path).resolve()
    loader = _Loader()
    children, issues = loader.children_of(definition, top, [top])
    if issues:
        raise WorkflowValidationError(issues, source=str(path))
    return children


def subworkflows_document(
    children: Mapping[str, Subworkflow], form: Callable[[WorkflowDefinition], dict[str, Any]]
) -> dict[str, Any]:
    """The tree as plain data, each definition in `form` (the store's: secrets masked)."""
    return {
        written: {
            "source": child.source,
            "definition": form(child.definition),
            "workflows": subworkflows_document(child.children, form),
        }
        for written, child in children.items()
    }


def subworkflows_from_document(document: Mapping[str, Any]) -> dict[str, Subworkflow]:
    """The tree `subworkflows_document` wrote (a stored copy: it was valid when stored)."""
    from automatosx.definition.validation import validate_document

    return {
        written: Subworkflow(
            validate_document(entry["definition"], source=entry.get("source")),
            str(entry.get("source") or written),
            subworkflows_from_document(entry.get("workflows") or {}),
        )
        for written, entry in document.items()
    }


def shown_path(path: Path) -> str:
    """A file as messages name it: relative to the current directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


class _Loader:
    """One depth-first walk over the files: each file is read once (a file two steps name
    is loaded once), and a file met again while it is still being loaded closes a cycle."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, int], tuple[Subworkflow | None, list[ValidationIssue]]] = {}

    def children_of(
        self, definition: WorkflowDefinition, file: Path, stack: list[Path]
    ) -> tuple[dict[str, Subworkflow], list[ValidationIssue]]:
        children: dict[str, Subworkflow] = {}
        issues: list[ValidationIssue] = []
        depth = len(stack)  # the nesting level of the children of `file`
        for index, step in enumerate(definition.steps):
            written = step.workflow
            if written is None or written in children:
                continue
            where = f"steps[{index}].workflow"
            try:
                target = (file.parent / written).resolve()
            except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable directory
                issues.append(ValidationIssue(where, f"{written}: cannot resolve the path: {exc}"))
                continue
            if target in stack:
                cycle = [*stack[stack.index(target) :], target]
                chain = " -> ".join(shown_path(p) for p in cycle)
                issues.append(ValidationIssue(where, f"a cycle of workflow files: {chain}"))
                continue
            if depth > MAX_NESTING:
                continue  # never runs: the step fails (nesting deeper than the limit)
            child, problems = self._load(target, stack)
            shown = shown_path(target)
            issues += [ValidationIssue(where, f"{shown}: {problem}") for problem in problems]
            if child is None:
                continue
            children[written] = child
            needed = sorted(context_names(child.definition) - set(step.with_ or {}))
            if needed:
                names = ", ".join("{{" + name + "}}" for name in needed)
                issues.append(
                    ValidationIssue(
                        f"steps[{index}].with",
                        f"{shown} needs {names}: give {'them' if len(needed) > 1 else 'it'} "
                        f"in 'with' (the sub-workflow's context is its 'with', nothing else)",
                    )
                )
        return children, issues

    def _load(
        self, target: Path, stack: list[Path]
    ) -> tuple[Subworkflow | None, list[ValidationIssue]]:
        key = (target, len(stack))
        if key in self._loaded:
            return self._loaded[key]
        from automatosx.definition.loader import load_workflow

        if len({path for path, _ in self._loaded}) >= MAX_FILES:
            found: tuple[Subworkflow | None, list[ValidationIssue]] = (
                None,
                [ValidationIssue("", f"more than {MAX_FILES} sub-workflow files")],
            )
        else:
            try:
                definition = load_workflow(target)
            except WorkflowValidationError as exc:
                found = (None, exc.issues)
            else:
                children, issues = self.children_of(definition, target, [*stack, target])
                child = Subworkflow(definition, shown_path(target), children)
                found = (None if issues else child, issues)
        self._loaded[key] = found
        return found
