"""Values that are not quite JSON (NaN, Infinity, absurd nesting) and user code that exits:
on either store they fail the step or the command cleanly, and never kill the runner
mid-write (which left the execution `executing` forever, an orphan nobody ran)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunAx

CALLABLES = """\
import sys

def nan(prompt, **kw):
    return {"v": float("nan"), "w": float("inf")}

def exits(prompt, **kw):
    sys.exit(5)

def interrupts(prompt, **kw):
    raise KeyboardInterrupt

async def exits_async(prompt, **kw):
    raise SystemExit("bye")
"""


def _strict_json(text: str) -> Any:
    """Standard JSON only: NaN and Infinity are not JSON, and jq or a browser reject them."""

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _run(run_ax: RunAx, tmp_path: Path, agent: dict[str, Any], env: dict[str, str]) -> Any:
    data = {
        "name": "odd-values",
        "agents": {"odd": agent, "echo": {"provider": "python", "callable": "odd:echo"}},
        "steps": [{"key": "a", "agent": "odd", "prompt": "x"}],
    }
    (tmp_path / "odd.py").write_text(CALLABLES + "\ndef echo(prompt, **kw):\n    return prompt\n")
    (tmp_path / "wf.json").write_text(json.dumps(data))
    result = run_ax("workflow", "run", "wf.json", "--format", "json", env=env)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    document = _strict_json(result.stdout)
    assert document["state"] in ("completed", "failed"), document
    assert result.returncode == (0 if document["state"] == "completed" else 1)
    status = run_ax("workflow", "status", document["executionId"], "--format", "json", env=env)
    assert _strict_json(status.stdout)["state"] == document["state"]
    return document


def test_nan_from_a_command_agent_is_text_not_structured_output(
    run_ax: RunAx, tmp_path: Path, store_url: str
) -> None:
    (tmp_path / "nan_agent.py").write_text(
        'import sys\nsys.stdin.read()\nprint(\'{"v": NaN, "w": -Infinity}\')\n'
    )
    agent = {"provider": "command", "command": [sys.executable, "nan_agent.py"]}
    document = _run(run_ax, tmp_path, agent, {"AX_DB": store_url})
    assert document["state"] == "completed"
    assert document["stepResults"]["a"] == '{"v": NaN, "w": -Infinity}'


def test_nan_from_a_python_callable_is_invalid_output(
    run_ax: RunAx, tmp_path: Path, store_url: str
) -> None:
    agent = {"provider": "python", "callable": "odd:nan"}
    document = _run(run_ax, tmp_path, agent, {"AX_DB": store_url})
    step = document["steps"]["a"]
    assert (document["state"], step["errorKind"]) == ("failed", "invalid_output"), step


@pytest.mark.parametrize("name", ["exits", "interrupts", "exits_async"])
def test_a_python_callable_that_exits_fails_its_step_not_the_runner(
    run_ax: RunAx, tmp_path: Path, name: str
) -> None:
    agent = {"provider": "python", "callable": f"odd:{name}"}
    document = _run(run_ax, tmp_path, agent, {})
    step = document["steps"]["a"]
    assert (document["state"], step["errorKind"]) == ("failed", "provider_error"), step
    assert "SystemExit" in step["error"] or "KeyboardInterrupt" in step["error"]


@pytest.mark.parametrize(
    "context", ['{"x": NaN}', '{"x": Infinity}', '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"]
)
def test_a_context_that_is_not_json_is_bad_input(
    run_ax: RunAx, tmp_path: Path, store_url: str, context: str
) -> None:
    (tmp_path / "ctx.json").write_text(context)
    data = {
        "name": "ctx",
        "agents": {"e": {"provider": "python", "callable": "odd:echo"}},
        "steps": [{"key": "a", "agent": "e", "prompt": "{{x}}"}],
    }
    (tmp_path / "odd.py").write_text("def echo(prompt, **kw):\n    return prompt\n")
    (tmp_path / "wf.json").write_text(json.dumps(data))
    result = run_ax(
        "workflow", "run", "wf.json", "--context", "@ctx.json", env={"AX_DB": store_url}
    )
    result.assert_clean_error(2)
    assert "--context" in result.stderr
    runs = run_ax("workflow", "runs", "--format", "json", env={"AX_DB": store_url})
    assert json.loads(runs.stdout) == []
