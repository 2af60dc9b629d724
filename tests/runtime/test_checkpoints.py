"""Automatic checkpoints while running; pausing and cancelling an execution whose runner
died (no live lease) are done directly by the command."""

from __future__ import annotations

import json
from pathlib import Path

from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    by_step,
    finish,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def test_automatic_checkpoints_every_interval(run_workflow) -> None:
    data = workflow(
        [step("quick"), step("slow", "ax:sleep=0.7", ["quick"]), step("last", "x", ["slow"])],
        config={"checkpointInterval": 200},
    )
    run = run_workflow(data)
    assert run.outcome.state == "completed"
    checkpoints = run.store.list_checkpoints(run.execution_id)
    assert len(checkpoints) >= 2
    assert all(c.created_by == "automatic" for c in checkpoints)
    during_slow = [c for c in checkpoints if c.completed_steps == ["quick"]]
    assert during_slow and during_slow[0].pending_steps == ["slow", "last"]
    assert all(c.size_bytes > 0 and c.state == "executing" for c in checkpoints)
    created = [e for e in run.events() if e.type == "checkpoint_created"]
    assert len(created) == len(checkpoints)


def kill_mid_step(ax_env: dict[str, str], tmp_path: Path, ledger: Path) -> str:
    """Run until `a` is running, then SIGKILL the runner. `a` is held until the test
    creates tmp_path/gate (its orphaned agent finishes then)."""
    data = workflow([step("a", f"ax:wait-file={tmp_path / 'gate'}"), step("b", "x", ["a"])])
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path)], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    runner.kill()
    finish(runner)
    store = open_store(str(tmp_path / "ax.db"))
    (execution,) = store.list_executions()
    store.close()
    return execution.id


def test_pause_an_orphan_directly_then_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    execution_id = kill_mid_step(ax_env, tmp_path, ledger)
    paused = run_ax("workflow", "pause", execution_id)
    assert paused.returncode == 0 and "Paused" in paused.stdout
    store = open_store(str(tmp_path / "ax.db"))
    assert store.get_execution(execution_id).state == "paused"
    assert store.list_checkpoints(execution_id)[0].created_by == "pause"
    store.close()
    (tmp_path / "gate").touch()
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    document = json.loads(resumed.stdout)
    assert document["state"] == "completed"
    assert document["steps"]["a"]["attempts"] == 2
    attempts = [r.attempt for r in by_step(agent_runs(ledger))["a"]]
    assert attempts == [1, 2]  # AX_ATTEMPT grew for the re-run


def test_cancel_an_orphan_directly(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    execution_id = kill_mid_step(ax_env, tmp_path, ledger)
    result = run_ax("workflow", "cancel", execution_id)
    assert result.returncode == 0 and "Cancelled" in result.stdout
    store = open_store(str(tmp_path / "ax.db"))
    assert store.get_execution(execution_id).state == "cancelled"
    (a,) = store.list_step_executions(execution_id)
    assert a.state == "cancelled"
    store.close()
    (tmp_path / "gate").touch()
    assert_dead(agent_runs(ledger)[0].pid)
