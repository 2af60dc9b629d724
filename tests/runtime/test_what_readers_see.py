"""What `status`, `run` and `runs` show of an execution, through the real CLI: every step
of the definition whether it ran or not, counts over the whole workflow, a runner that is
gone, and an execution resumed from another directory running where it started."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    kill_runner_when,
    only_execution_id,
    pause_and_release,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def seven_steps() -> dict[str, object]:
    return workflow(
        [
            step("a", "x"),
            step("b", "ax:fail-always", ["a"]),
            step("c", "x", ["b"]),
            step("d", "x", ["c"]),
            step("e", "x", ["b"]),
            step("f", "x", ["e"]),
            step("g", "x", ["f", "d"]),
        ],
        config={"parallelism": 1},
    )


def test_a_failed_run_lists_every_step_and_counts_the_whole_workflow(
    run_ax: RunAx, tmp_path: Path
) -> None:
    path = write_workflow(tmp_path, seven_steps())
    run = run_ax("workflow", "run", str(path), "--format", "json")
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    states = {key: entry["state"] for key, entry in document["steps"].items()}
    assert list(states) == ["a", "b", "c", "d", "e", "f", "g"]  # the file's order
    assert states == {
        "a": "completed", "b": "failed", "c": "cancelled", "d": "cancelled",
        "e": "cancelled", "f": "cancelled", "g": "cancelled",
    }  # fmt: skip
    assert all(document["steps"][k]["attempts"] == 0 for k in "cdefg")
    table = run_ax("workflow", "status", document["executionId"])
    assert table.returncode == 0
    assert "Steps         1/7 completed" in table.stdout or "1/7 completed" in table.stdout
    for key in "abcdefg":
        assert f"\n{key} " in table.stdout, table.stdout


def test_continue_on_error_lists_the_skipped_steps(run_ax: RunAx, tmp_path: Path) -> None:
    data = seven_steps()
    data["config"] = {"parallelism": 1, "continueOnError": True}
    path = write_workflow(tmp_path, data)
    run = run_ax("workflow", "run", str(path), "--format", "json")
    document = json.loads(run.stdout)
    states = {key: entry["state"] for key, entry in document["steps"].items()}
    assert states == {
        "a": "completed", "b": "failed", "c": "skipped", "d": "skipped",
        "e": "skipped", "f": "skipped", "g": "skipped",
    }  # fmt: skip
    assert document["steps"]["c"]["error"] == "upstream step 'b' failed"


def test_a_paused_run_lists_the_steps_still_to_run(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    data = workflow(
        [step("a", f"ax:wait-file={gate}"), step("b", "x", ["a"]), step("c", "x", ["b"])]
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id, paused = pause_and_release(run_ax, runner, tmp_path, gate)
    steps = paused["steps"]
    assert {k: (s["state"], s["attempts"]) for k, s in steps.items()} == {
        "a": ("completed", 1), "b": ("pending", 0), "c": ("pending", 0),
    }  # fmt: skip
    table = run_ax("workflow", "status", execution_id).stdout
    assert "1/3 completed" in table


def test_an_orphan_is_shown_as_such_with_the_command_that_recovers_it(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """After kill -9 of its runner an execution still says `executing`: `status` and `runs`
    must show that nobody runs it and how to continue it."""
    # (a SIGKILLed runner cannot kill its agents: this one ends by itself a moment later)
    path = write_workflow(tmp_path, workflow([step("a", "ax:sleep=2"), step("b", "x", ["a"])]))
    kill_runner_when(ax_env, tmp_path, ["workflow", "run", str(path)], bool, 0.05)
    execution_id = only_execution_id(tmp_path)
    status = json.loads(run_ax("workflow", "status", execution_id, "--format", "json").stdout)
    assert (status["state"], status["orphaned"]) == ("executing", True)
    table = run_ax("workflow", "status", execution_id).stdout
    assert "runner gone" in table
    assert f"ax workflow resume {execution_id}" in table and "ax workflow recover" in table
    (entry,) = json.loads(run_ax("workflow", "runs", "--format", "json").stdout)
    assert entry["orphaned"] is True
    runs = run_ax("workflow", "runs")
    assert "runner gone" in runs.stdout and "ax workflow recover" in runs.stderr
    assert run_ax("workflow", "cancel", execution_id).returncode == 0
    after = json.loads(run_ax("workflow", "status", execution_id, "--format", "json").stdout)
    assert (after["state"], after["orphaned"]) == ("cancelled", False)
    assert {k: s["state"] for k, s in after["steps"].items()} == {
        "a": "cancelled",
        "b": "cancelled",
    }
