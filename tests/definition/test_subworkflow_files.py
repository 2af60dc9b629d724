"""Loading the tree of sub-workflow files: each file once, cycles named, the stored copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automatosx.definition.loader import load_workflow
from automatosx.definition.subworkflows import (
    load_subworkflows,
    subworkflows_document,
    subworkflows_from_document,
)
from automatosx.errors import WorkflowValidationError


def flow(name: str, *children: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"key": "work", "agent": "writer", "prompt": "x"}]
    steps += [{"key": f"run-{i}", "workflow": child} for i, child in enumerate(children)]
    return {"name": name, "steps": steps}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_file_two_steps_reach_is_loaded_once_and_the_tree_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    top = write(tmp_path / "top.json", flow("top", "a/left.json", "right.json"))
    write(tmp_path / "a" / "left.json", flow("left", "../shared.json"))
    write(tmp_path / "right.json", flow("right", "shared.json"))
    write(tmp_path / "shared.json", flow("shared"))
    tree = load_subworkflows(load_workflow(top), top)
    left = tree["a/left.json"].children["../shared.json"]
    right = tree["right.json"].children["shared.json"]
    assert left is right and left.source == "shared.json"  # one file, loaded once
    document = subworkflows_document(tree, lambda d: d.to_data())
    again = subworkflows_from_document(json.loads(json.dumps(document)))
    assert again["right.json"].children["shared.json"].definition == right.definition
    assert again["a/left.json"].source == "a/left.json"


def test_a_file_that_runs_itself_is_a_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    top = write(tmp_path / "self.json", flow("self", "./self.json"))
    with pytest.raises(WorkflowValidationError) as caught:
        load_subworkflows(load_workflow(top), top)
    (issue,) = caught.value.issues
    assert issue.path == "steps[1].workflow"
    assert issue.message == "a cycle of workflow files: self.json -> self.json"


def test_a_workflow_without_workflow_steps_reads_no_file(tmp_path: Path) -> None:
    top = write(tmp_path / "plain.json", flow("plain"))
    assert load_subworkflows(load_workflow(top), top) == {}
