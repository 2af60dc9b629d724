"""`run` and `resume` name the execution on stderr the moment it exists (SPEC section 7), so
another shell can watch, pause or cancel it long before it ends. Each test reads the pipe
while the run is live: the first step is held on a gate file until the ID has been read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunAx
from tests.runtime.support import agent_runs, finish, start_ax, step, workflow, write_workflow


def read_announcement(proc: subprocess.Popen[str], verb: str) -> tuple[str, list[str]]:
    """The execution ID and the lines announcing it, read from the live process's stderr."""
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith("Execution ") and line.rstrip().endswith(f" {verb}."):
            execution_id = line.split()[1]
            for _ in range(4):  # the commands that follow
                lines.append(proc.stderr.readline().rstrip("\n"))
            return execution_id, lines
    raise AssertionError(f"stderr ended without an announcement: {lines}")


@pytest.mark.parametrize("format", ["table", "json"])
def test_run_prints_the_id_and_commands_before_the_first_step_ends(
    run_ax: RunAx, tmp_path: Path, ax_env: dict[str, str], ledger: Path, format: str
) -> None:
    gate = tmp_path / "gate"
    path = write_workflow(tmp_path, workflow([step("a", f"ax:wait-file={gate}")]))
    proc = start_ax(["workflow", "run", str(path), "--format", format], env=ax_env, cwd=tmp_path)
    try:
        execution_id, lines = read_announcement(proc, "started")
        assert [run.end for run in agent_runs(ledger)] in ([], [None])  # still held
        live = run_ax("workflow", "status", execution_id, "--format", "json")
        assert json.loads(live.stdout)["state"] == "executing"
        assert f"  pause:  ax workflow pause {execution_id}" in lines
        assert f"  cancel: ax workflow cancel {execution_id}" in lines
        assert f"  status: ax workflow status {execution_id}" in lines
    finally:
        gate.touch()
    code, out, _ = finish(proc)
    assert code == 0
    if format == "json":
        assert json.loads(out)["executionId"] == execution_id


def test_resume_prints_the_id_before_the_remaining_steps_end(
    run_ax: RunAx, tmp_path: Path, ax_env: dict[str, str]
) -> None:
    gate = tmp_path / "gate"
    steps = [step("a", "ax:request=pause"), step("b", f"ax:wait-file={gate}", ["a"])]
    path = write_workflow(tmp_path, workflow(steps))
    paused = run_ax("workflow", "run", str(path), "--format", "json")
    assert paused.returncode == 4, paused.stderr
    execution_id = json.loads(paused.stdout)["executionId"]
    assert f"Execution {execution_id} started." in paused.stderr

    proc = start_ax(["workflow", "resume", execution_id[:8]], env=ax_env, cwd=tmp_path)
    try:
        announced, _ = read_announcement(proc, "resumed")
        assert announced == execution_id  # the full ID, even when given a prefix
        assert not gate.exists()
    finally:
        gate.touch()
    code, out, _ = finish(proc)
    assert code == 0, out
