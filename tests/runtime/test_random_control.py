"""Pause and cancel from a second process at seeded random moments: whatever the moment,
the run ends in the state asked for (or completed, if it finished first), no agent is left
running, no attempt stays `running`, and a paused run resumes without re-running anything
that completed."""

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

FLOW = workflow(
    [
        step("a", "ax:sleep=0.2"),
        step("b", "ax:sleep=0.3", ["a"]),
        step("c", "ax:sleep=0.1", ["a"]),
        step("d", "ax:sleep=0.2", ["b", "c"]),
        step("e", "ax:sleep=0.3"),
    ],
    config={"parallelism": 2},
)
EXPECTED_EXIT = {"pause": 4, "cancel": 3}


@pytest.mark.parametrize("seed", range(6))
def test_control_at_a_random_moment(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path, seed: int
) -> None:
    rng = random.Random(seed)
    action = "pause" if seed % 2 == 0 else "cancel"
    path = write_workflow(tmp_path, FLOW)
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    store = open_store(str(tmp_path / "ax.db"))
    (execution,) = store.list_executions()
    time.sleep(rng.uniform(0, 0.6))
    control = run_ax("workflow", action, execution.id)
    code, out, err = finish(runner)
    document = json.loads(out)
    if control.returncode == 2:  # the run had already finished
        assert code == 0 and document["state"] == "completed"
    else:
        assert code in (EXPECTED_EXIT[action], 0), err
        assert document["state"] == {4: "paused", 3: "cancelled", 0: "completed"}[code]
    for run in agent_runs(ledger):
        assert_dead(run.pid)
    records = store.list_step_executions(execution.id)
    assert not [r for r in records if r.state == "running"]
    if document["state"] == "paused":
        before = {k for k, s in document["steps"].items() if s["state"] == "completed"}
        resumed = run_ax("workflow", "resume", execution.id, "--format", "json")
        assert json.loads(resumed.stdout)["state"] == "completed"
        runs = by_step(agent_runs(ledger))
        assert all(len(runs[key]) == 1 for key in before)
        assert set(runs) == {"a", "b", "c", "d", "e"}
    store.close()
