"""`ax workflow run` end to end: input checks (exit 2), output formats and exit codes,
and Ctrl-C / SIGTERM cancelling cleanly (exit 3)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    finish,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def test_json_format_prints_one_document_and_exit_0(run_ax: RunAx, tmp_path: Path) -> None:
    path = write_workflow(tmp_path, workflow([step("a", 'ax:output={"v":1} {{file}}')]))
    result = run_ax(
        "workflow",
        "run",
        str(path),
        "--context",
        '{"file": "x.py"}',
        "--triggered-by",
        "ci",
        "--priority",
        "5",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["state"] == "completed"
    assert document["triggeredBy"] == "ci" and document["priority"] == 5
    assert document["stepResults"] == {"a": {"v": 1}}
    assert document["context"] == {"file": "x.py"}
    assert document["steps"]["a"]["provider"] == "command"


def test_failed_run_exits_1_with_a_table_summary(run_ax: RunAx, tmp_path: Path) -> None:
    path = write_workflow(tmp_path, workflow([step("a", "ax:fail-always")]))
    result = run_ax("workflow", "run", str(path))
    assert result.returncode == 1
    assert "failed" in result.stdout and "planned failure" in result.stdout
    assert "Traceback" not in result.stderr


def test_context_from_a_file(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "ctx.json").write_text('{"file": "from-file"}')
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{file}}")]))
    result = run_ax("workflow", "run", str(path), "--context", "@ctx.json", "--format", "json")
    assert json.loads(result.stdout)["stepResults"]["a"] == "ax:echo from-file"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (None, "{{file}}"),
        ('{"other": 1}', "{{file}}"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("@missing.json", "cannot read"),
    ],
)
def test_bad_or_missing_context_exits_2_before_anything_runs(
    run_ax: RunAx, tmp_path: Path, ledger: Path, context: str | None, expected: str
) -> None:
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{file}}")]))
    args = ["workflow", "run", str(path)] + (["--context", context] if context else [])
    result = run_ax(*args)
    result.assert_clean_error(2)
    assert expected in result.stderr
    assert not ledger.exists()
    assert (
        not (tmp_path / "ax.db").exists()
        or not open_store(str(tmp_path / "ax.db")).list_executions()
    )


def test_unknown_agent_and_agent_without_usable_provider_exit_2(
    run_ax: RunAx, tmp_path: Path
) -> None:
    agents = {"hollow": {"provider": "command", "command": ["no-such-program-ax"]}}
    data = workflow([step("a", agent="nobody"), step("b", agent="hollow")], agents=agents)
    path = write_workflow(tmp_path, data)
    result = run_ax("workflow", "run", str(path))
    result.assert_clean_error(2)
    assert "steps[0].agent" in result.stderr and "nobody" in result.stderr
    assert "steps[1].agent" in result.stderr and "no-such-program-ax" in result.stderr


def test_agent_files_in_the_working_directory_are_used(run_ax: RunAx, tmp_path: Path) -> None:
    agents = tmp_path / ".automatosx" / "agents"
    agents.mkdir(parents=True)
    rec = workflow([])["agents"]["rec"]
    (agents / "backend.yaml").write_text(json.dumps(rec))  # JSON is YAML
    data = workflow([step("a", agent="backend")])
    path = write_workflow(tmp_path, data)
    result = run_ax("workflow", "run", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"]["a"]["agent"] == "backend"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cancels_cleanly_with_exit_3(
    ax_env: dict[str, str], tmp_path: Path, ledger: Path, sig: signal.Signals
) -> None:
    data = workflow([step("long", "ax:sleep=30"), step("later", "x", ["long"])])
    path = write_workflow(tmp_path, data)
    proc = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == 3, err
    document = json.loads(out)
    assert document["state"] == "cancelled"
    assert document["steps"]["long"]["state"] == "cancelled"
    assert document["steps"]["later"]["state"] == "cancelled"  # listed, never started
    assert document["steps"]["later"]["attempts"] == 0
    assert_dead(agent_runs(ledger)[0].pid)


@pytest.mark.parametrize("format", ["table", "json"])
def test_run_reports_validation_problems_as_validate_does(
    run_ax: RunAx, tmp_path: Path, format: str
) -> None:
    data = workflow([step("a", deps=["zz"]), step("b", timeoutMs=-5)])
    path = write_workflow(tmp_path, data)
    validate = run_ax("workflow", "validate", str(path))
    run = run_ax("workflow", "run", str(path), "--format", format)
    run.assert_clean_error(2)
    lines = run.stderr.splitlines()
    assert lines == validate.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {path}: steps[") for line in lines)
    assert run.stdout == ""


def test_context_dot_name_in_a_template_gets_a_hint(run_ax: RunAx, tmp_path: Path) -> None:
    path = write_workflow(tmp_path, workflow([step("a", "hello {{context.who}}")]))
    result = run_ax("workflow", "run", str(path), "--context", '{"who": "bob"}')
    result.assert_clean_error(2)
    assert "templates name a context value directly, as {{who}}" in result.stderr
