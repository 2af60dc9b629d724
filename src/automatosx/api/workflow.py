"""A workflow in code: `Workflow.from_dict`, `load_workflow` (a YAML or JSON file).

Both validate exactly as `ax workflow validate` does (the same loader and rules) and raise
`WorkflowValidationError` listing every problem, each with its path (`.problems`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatosx.errors import WorkflowValidationError

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition
    from automatosx.definition.subworkflows import Subworkflow


@dataclass(frozen=True, eq=False)
class Workflow:
    """A validated workflow definition, ready to run with `run_workflow`.

    `source` is the file it was read from (None for a dict); `subworkflows` the files its
    `workflow:` steps run, loaded with it (relative to its file, or to `base_dir` for a dict).
    """

    definition: WorkflowDefinition
    source: str | None = None
    subworkflows: Mapping[str, Subworkflow] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
    ) -> Workflow:
        """Validate a workflow given as data (the file's fields, camelCase: `name`, `steps`,
        `agents`, `config`...). `base_dir`: where the files of `workflow:` steps are found
        (default: the current directory)."""
        from automatosx.definition.subworkflows import load_subworkflows
        from automatosx.definition.validation import validate_document

        # Anything but a mapping is refused by validate_document, naming what it got.
        plain = dict(document) if isinstance(document, Mapping) else document
        definition = validate_document(plain)
        where = Path(base_dir) if base_dir is not None else Path.cwd()
        try:
            children = load_subworkflows(definition, where / f"{definition.name}.yaml")
        except WorkflowValidationError as exc:  # not a file: name no file
            raise WorkflowValidationError(exc.issues) from None
        return cls(definition, None, children)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Workflow:
        """Read and validate a workflow file (YAML or JSON) and the files it runs."""
        from automatosx.definition.loader import load_workflow as load
        from automatosx.definition.subworkflows import load_subworkflows

        where = os.fspath(path)
        definition = load(where)
        return cls(definition, where, load_subworkflows(definition, where))

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def version(self) -> str:
        return self.definition.version

    @property
    def description(self) -> str | None:
        return self.definition.description

    @property
    def step_keys(self) -> list[str]:
        """The steps' keys, in the file's order."""
        return [step.key for step in self.definition.steps]

    def to_dict(self) -> dict[str, Any]:
        """The file form (camelCase, defaults left out), which `from_dict` reads back."""
        return self.definition.to_data()

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<Workflow {self.name} {self.version}{where}: {len(self.step_keys)} steps>"


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Read and validate the workflow file at `path` (`Workflow.from_file`)."""
    return Workflow.from_file(path)


def as_workflow(workflow: Workflow | Mapping[str, Any] | str | os.PathLike[str]) -> Workflow:
    """A `Workflow` from what `run_workflow` accepts: one already, a dict, or a file path."""
    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, Mapping):
        return Workflow.from_dict(workflow)
    return Workflow.from_file(workflow)
