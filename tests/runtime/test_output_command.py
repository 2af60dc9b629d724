"""`ax workflow output ID STEP` (SPEC section 7): one step's output for scripts and people.
Text as the agent gave it (control characters shown escaped), JSON pretty-printed, or exact
compact JSON with `--format json`; a step without an output is a clear error, exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import RunAx
from tests.runtime.support import step, workflow, write_workflow

ESCAPES = "line one\n\x1b[31mred\x1b[0m \x1b]0;title\x07"


@pytest.fixture
def execution_id(run_ax: RunAx, tmp_path: Path) -> str:
    data = workflow(
        [
            step("text", "x", agent="escapes"),
            step("data", 'ax:output={"files":["a.py","b.py"],"n":2}'),
            step("review", "ax:echo {{file}}!", ["data"], forEach={
                "items": "steps.data.output.files", "as": "file"}),
            step("never", "x", ["data"], **{"if": "steps.data.output.n > 5"}),
        ],
        agents={"escapes": {"provider": "command", "command": [
            sys.executable, "-c", f"import sys; sys.stdout.write({ESCAPES!r})"]}},
    )  # fmt: skip
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    return str(document["executionId"])


def test_text_output_is_printed_as_is_with_control_characters_escaped(
    run_ax: RunAx, execution_id: str
) -> None:
    result = run_ax("workflow", "output", execution_id, "text")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert result.stdout == "line one\n\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\n"


def test_json_format_prints_the_exact_output(run_ax: RunAx, execution_id: str) -> None:
    result = run_ax("workflow", "output", execution_id[:8], "text", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ESCAPES
    assert result.stdout.count("\n") == 1  # compact: one line


def test_a_json_output_is_pretty_printed_or_compact(run_ax: RunAx, execution_id: str) -> None:
    pretty = run_ax("workflow", "output", execution_id, "data")
    assert pretty.stdout == '{\n  "files": [\n    "a.py",\n    "b.py"\n  ],\n  "n": 2\n}\n'
    compact = run_ax("workflow", "output", execution_id, "data", "--format", "json")
    assert compact.stdout == '{"files": ["a.py", "b.py"], "n": 2}\n'


def test_a_for_each_step_and_its_items(run_ax: RunAx, execution_id: str) -> None:
    item = run_ax("workflow", "output", execution_id, "review[1]")
    assert item.stdout == "ax:echo b.py!\n"
    whole = run_ax("workflow", "output", execution_id, "review", "--format", "json")
    assert json.loads(whole.stdout) == ["ax:echo a.py!", "ax:echo b.py!"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("never", "error: step 'never' is skipped (condition_false): it has no output"),
        ("reveiw", "has no step 'reveiw' (did you mean 'review'?)"),
        ("review[2]", "has no step 'review[2]'"),
    ],
)
def test_a_step_without_output_is_a_clear_error(
    run_ax: RunAx, execution_id: str, key: str, message: str
) -> None:
    result = run_ax("workflow", "output", execution_id, key)
    result.assert_clean_error(2)
    assert message in result.stderr
    assert result.stdout == ""


def test_an_unknown_execution_is_a_clear_error(run_ax: RunAx, execution_id: str) -> None:
    result = run_ax("workflow", "output", "ffffffff-0000", "text")
    result.assert_clean_error(2)
