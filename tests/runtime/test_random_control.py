"""Pause and cancel from a second process at seeded random moments: whatever the moment, the
run ends in the state asked for, no agent is left running, no attempt stays `running`, and a
paused run resumes without re-running anything that completed.

A step `hold` keeps the run from finishing until the control command has returned (the test
releases it only then), so "completed" can only mean the request was ignored: the state
asked for is the only acceptable outcome, and pause must also have started nothing after
it returned."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

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

EXPECTED = {"pause": (4, "paused"), "cancel": (3, "cancelled")}


def flow(gate: Path) -> dict[str, object]:
    return workflow(
        [
            step("a", "ax:sleep=0.2"),
            step("b", "ax:sleep=0.3", ["a"]),
            step("c", "ax:sleep=0.1", ["a"]),
            step("d", "ax:sleep=0.2", ["b", "c"]),
            step("e", "ax:sleep=0.3"),
            step("hold", f"ax:wait-file={gate}"),
            step("last", "x", ["d", "e", "hold"]),
        ],
        config={"parallelism": 3},
    )


@pytest.mark.parametrize("seed", range(6))
def test_control_at_a_random_moment(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path, seed: int
) -> None:
    rng = random.Random(seed)
    action = "pause" if seed % 2 == 0 else "cancel"
    gate = tmp_path / "gate"
    path = write_workflow(tmp_path, flow(gate))
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    store = open_store(str(tmp_path / "ax.db"))
    (execution,) = store.list_executions()
    time.sleep(rng.uniform(0, 0.6))
    control = run_ax("workflow", action, execution.id)
    returned_at = time.time()
    gate.touch()  # only now may the run finish
    code, out, err = finish(runner)
    assert control.returncode == 0, control.stderr
    document = json.loads(out)
    assert (code, document["state"]) == EXPECTED[action], err
    runs = agent_runs(ledger)
    assert "last" not in by_step(runs)  # it needs `hold`, released after the request
    assert all(r.start < returned_at for r in runs), [(r.step, r.start) for r in runs]
    for run in runs:
        assert_dead(run.pid)
    records = store.list_step_executions(execution.id)
    assert not [r for r in records if r.state == "running"]
    if action == "cancel":
        assert document["steps"]["hold"]["state"] == "cancelled"  # killed, not finished
        assert document["steps"]["last"]["attempts"] == 0  # never started
    else:
        assert document["steps"]["hold"]["state"] == "completed"  # running steps finish
        assert document["steps"]["last"]["state"] == "pending"
        before = {k for k, s in document["steps"].items() if s["state"] == "completed"}
        resumed = run_ax("workflow", "resume", execution.id, "--format", "json")
        assert json.loads(resumed.stdout)["state"] == "completed"
        runs_by_step = by_step(agent_runs(ledger))
        assert all(len(runs_by_step[key]) == 1 for key in before)
        assert set(runs_by_step) == {"a", "b", "c", "d", "e", "hold", "last"}
    store.close()
