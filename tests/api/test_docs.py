"""docs/python-api.md cannot rot: each of its `python` blocks is a complete program, run in
a fresh interpreter in an empty directory with its own `AX_DB`, and must exit 0 (its
asserts are the checks). Every name of the API appears in some example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.support import env_for, python

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_every_api_name_has_an_example() -> None:
    code = "\n".join(BLOCKS)
    names = [
        "ax.Workflow.from_dict(", "ax.load_workflow(", "ax.run_workflow(",
        "ax.run_workflow_async(", "ax.Client(", ".executions(", ".status(", ".events(",
        ".checkpoints(", ".output(", ".workflows(", ".pending(", ".pause(", ".resume(",
        ".cancel(", ".approve(", ".reject(", ".run(", "ax.StepError(",
        "ax.WorkflowValidationError", ".problems", "ax.RunningLoopError", "ax.NotFoundError",
        "ax.StateConflictError", ".to_dict()", ".stats(",
    ]  # fmt: skip
    missing = [name for name in names if name not in code]
    assert not missing, missing


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_example_runs(index: int, tmp_path: Path) -> None:
    proc = python(BLOCKS[index], cwd=tmp_path, env=env_for(tmp_path / "ax.db"))
    assert proc.returncode == 0, f"example {index + 1}:\n{BLOCKS[index]}\n{proc.stderr}"
