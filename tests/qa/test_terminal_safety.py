"""Text from agents, files and the store never drives the terminal (SPEC section 7): escape
sequences in an agent's output or error, or in a workflow's description, are shown escaped
by every command a person reads, while `--format json` keeps them exactly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import RunAx

EVIL = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x9b1m\u202eevil"


def evil_workflow(tmp_path: Path) -> Path:
    script = (
        "import sys; "
        f"sys.stdout.write({EVIL!r}) if 'ok' in sys.stdin.read() else "
        f"(sys.stderr.write({EVIL!r}), sys.exit(1))"
    )
    data = {
        "name": "evil",
        "description": f"a description with {EVIL}",
        "agents": {"evil": {"provider": "command", "command": [sys.executable, "-c", script]}},
        "steps": [
            {"key": "says", "agent": "evil", "prompt": "ok"},
            {"key": "fails", "agent": "evil", "prompt": "no", "optional": True},
        ],
    }
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def assert_safe(text: str) -> None:
    for control in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert control not in text, repr(text)


@pytest.fixture
def execution_id(run_ax: RunAx, tmp_path: Path) -> str:
    result = run_ax("workflow", "run", str(evil_workflow(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout)
    assert_safe(result.stderr)
    assert "\\x1b[2J" in result.stdout  # the output is shown, escaped
    runs = json.loads(run_ax("workflow", "runs", "--format", "json").stdout)
    return str(runs[0]["executionId"])


@pytest.mark.parametrize(
    "command",
    [
        ["workflow", "status", "{id}"],
        ["workflow", "events", "{id}"],
        ["workflow", "checkpoints", "{id}"],
        ["workflow", "output", "{id}", "says"],
        ["workflow", "list"],
        ["workflow", "runs"],
    ],
)
def test_readers_show_control_characters_escaped(
    run_ax: RunAx, execution_id: str, command: list[str]
) -> None:
    result = run_ax(*[part.format(id=execution_id) for part in command])
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout)
    assert_safe(result.stderr)


def test_the_failed_steps_error_is_shown_escaped(run_ax: RunAx, execution_id: str) -> None:
    status = run_ax("workflow", "status", execution_id)
    assert "\\x1b]0;pwned\\x07" in status.stdout


def test_json_keeps_the_exact_text(run_ax: RunAx, execution_id: str) -> None:
    document = json.loads(run_ax("workflow", "status", execution_id, "--format", "json").stdout)
    assert document["stepResults"]["says"] == EVIL
    assert EVIL in document["steps"]["fails"]["error"]
    listed = json.loads(run_ax("workflow", "list", "--format", "json").stdout)
    assert listed[0]["description"] == f"a description with {EVIL}"


def test_validate_and_graph_show_the_file_escaped(run_ax: RunAx, tmp_path: Path) -> None:
    path = evil_workflow(tmp_path)
    for command in (["validate"], ["graph"], ["graph", "--format", "dot"]):
        result = run_ax("workflow", *command, str(path))
        assert result.returncode == 0, result.stderr
        assert_safe(result.stdout)


def test_an_error_line_quoting_the_file_is_escaped(run_ax: RunAx, tmp_path: Path) -> None:
    data = {"name": "bad", "steps": [{"key": "a", "agent": f"x{EVIL}", "prompt": "p"}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    for command in ("validate", "run"):
        result = run_ax("workflow", command, str(path))
        result.assert_clean_error(2)
        assert_safe(result.stderr)
        assert "\\x1b" in result.stderr
