"""Sub-workflow steps of a submitted execution: the child is a submitted execution too, with
turns of its own on the workers; its end gives its parent a turn. A parent's cancel, pause
and resume reach the child. Real `ax worker` processes on the real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import RunAx
from tests.runtime.support import agent_runs, step, workflow
from tests.worker.conftest import Workers, status, wait_until


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def submit_parent(run_ax: RunAx, tmp_path: Path, child_steps: list[dict[str, Any]]) -> str:
    write(tmp_path / "sub" / "child.json", workflow(child_steps, name="child"))
    parent = write(
        tmp_path / "parent.json",
        workflow(
            [
                step("triage", 'ax:output={"files":["a.py","b.py"]}'),
                {
                    "key": "review",
                    "workflow": "sub/child.json",
                    "dependencies": ["triage"],
                    "with": {"files": "{{triage.files}}"},
                },
                step("report", "got {{review.count}}", ["review"]),
            ],
            name="parent",
        ),
    )
    result = run_ax("workflow", "submit", str(parent), "--format", "json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["executionId"])


def test_a_child_runs_on_the_workers_and_its_results_are_the_steps_output(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers
) -> None:
    execution_id = submit_parent(run_ax, tmp_path, [step("count", "ax:output={{files}}")])
    start_worker()
    start_worker()
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30", "--format", "json")
    assert waited.returncode == 0, waited.stderr
    document = json.loads(waited.stdout)
    review = document["steps"]["review"]
    assert review["state"] == "completed" and review["attempts"] == 1
    child = status(run_ax, review["childExecutionId"])
    assert (child["state"], child["parentExecutionId"]) == ("completed", execution_id)
    assert document["stepResults"]["review"] == child["stepResults"] == {"count": ["a.py", "b.py"]}
    assert document["steps"]["report"]["state"] == "completed"  # its dependent went on
    assert child["triggeredBy"] == "parent/review"


def test_cancelling_the_parent_cancels_the_child_and_kills_its_step(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    started = tmp_path / "started"
    execution_id = submit_parent(
        run_ax, tmp_path, [step("count", f"ax:announce={started} ax:sleep=30")]
    )
    start_worker()
    wait_until(started.exists)
    cancelled = run_ax("workflow", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert status(run_ax, execution_id)["state"] == "cancelled"
    child_id = status(run_ax, execution_id)["steps"]["review"]["childExecutionId"]
    wait_until(lambda: status(run_ax, child_id)["state"] == "cancelled", timeout=10)
    (run,) = [r for r in agent_runs(ledger) if r.step == "count"]
    wait_until(lambda: not Path(f"/proc/{run.pid}").exists(), timeout=10)


def test_pausing_the_parent_pauses_the_child_and_resume_goes_on_with_it(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    started = tmp_path / "started"
    execution_id = submit_parent(
        run_ax,
        tmp_path,
        [step("count", f"ax:announce={started} ax:sleep=3 ax:output={{{{files}}}}"),
         step("after", "ax:echo after", ["count"])],
    )  # fmt: skip
    start_worker()
    wait_until(started.exists)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    wait_until(lambda: status(run_ax, execution_id)["state"] == "paused", timeout=15)
    child_id = status(run_ax, execution_id)["steps"]["review"]["childExecutionId"]
    child = status(run_ax, child_id)
    assert child["state"] == "paused" and child["steps"]["after"]["state"] == "pending"
    resumed = run_ax("workflow", "resume", execution_id)
    assert resumed.returncode == 0, resumed.stderr
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30", "--format", "json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["steps"]["review"]["childExecutionId"] == child_id
    assert status(run_ax, child_id)["state"] == "completed"
    assert [r.step for r in agent_runs(ledger)].count("count") == 1  # never ran again
