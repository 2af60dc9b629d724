"""Crash recovery: the runner is SIGKILLed at many points (before a step, mid-step, right
after a step's output, during a retry's backoff), then resumed; an external ledger written
by the agents proves every step completed exactly once in the store and ran at most once
more than it had to. `ax workflow recover` finds and resumes orphans by itself."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    AgentRun,
    agent_runs,
    assert_dead,
    by_step,
    kill_runner_when,
    step,
    workflow,
    write_workflow,
)

RETRY = {"maxRetries": 2, "retryDelayMs": 500, "retryBackoffMultiplier": 2.0}
CRASH_FLOW = workflow(
    [
        step("a", "ax:sleep=0.15"),
        step("b", "ax:sleep=0.1 ax:fail-attempts=1", ["a"], retryPolicy=RETRY),
        step("c", "ax:sleep=0.3", ["a"]),
        step("d", "ax:sleep=0.1", ["b", "c"]),
        step("e", "ax:sleep=0.25"),
        step("f", "ax:sleep=0.05", ["d", "e"]),
    ],
    config={"parallelism": 2},
)
# attempts each step needs without crashes (b fails its first attempt on purpose)
NEEDED = {"a": 1, "b": 2, "c": 1, "d": 1, "e": 1, "f": 1}
Trigger = Callable[[list[AgentRun]], bool]


def started(key: str) -> Trigger:
    return lambda runs: any(r.step == key for r in runs)


def ended(key: str, attempt: int = 1) -> Trigger:
    return lambda runs: any(r.step == key and r.attempt == attempt and r.end for r in runs)


KILL_POINTS: list[tuple[str, Trigger, float]] = [
    ("before the first step", lambda runs: True, 0.0),
    ("mid-step a", started("a"), 0.05),
    ("right after a's output", ended("a"), 0.0),
    ("mid-step c", started("c"), 0.1),
    ("during b's retry backoff", ended("b"), 0.15),
    ("right after b's failure", ended("b"), 0.0),
    ("before d", ended("c"), 0.02),
    ("mid-step d", started("d"), 0.03),
    ("right after d's output", lambda runs: any(r.step == "d" and r.end for r in runs), 0.0),
    ("before f", lambda runs: any(r.step == "e" and r.end for r in runs), 0.0),
]


def check_ledger_and_store(db: Path, ledger: Path, execution_id: str, crashes: int) -> None:
    store = open_store(str(db))
    try:
        assert store.get_execution(execution_id).state == "completed"
        completed = [r.step_key for r in store.list_step_executions(execution_id)]
        records = store.list_step_executions(execution_id)
        completed = sorted(r.step_key for r in records if r.state == "completed")
        assert completed == sorted(NEEDED)  # every step completed exactly once in the store
    finally:
        store.close()
    runs = agent_runs(ledger)
    for run in runs:
        assert_dead(run.pid)
    for key, needed in NEEDED.items():
        ran = by_step(runs)[key]
        # each crash may re-run what was in flight: at most once more per crash
        assert needed <= len(ran) <= needed + crashes, (key, [(r.attempt, r.end) for r in ran])
        assert [r.attempt for r in ran] == sorted({r.attempt for r in ran})  # no reuse


@pytest.mark.parametrize("seed", range(14))
def test_sigkill_at_many_points_then_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path, seed: int
) -> None:
    rng = random.Random(seed)
    name, trigger, delay = KILL_POINTS[seed % len(KILL_POINTS)]
    delay += rng.uniform(0, 0.05)
    path = write_workflow(tmp_path, CRASH_FLOW)
    kill_runner_when(ax_env, tmp_path, ["workflow", "run", str(path)], trigger, delay)
    store = open_store(str(tmp_path / "ax.db"))
    executions = store.list_executions()
    store.close()
    if not executions:  # killed before the execution existed: nothing ran, nothing to resume
        assert not agent_runs(ledger), name
        return
    (execution,) = executions
    crashes = 1
    if seed % 3 == 0:  # crash the first resume too, mid-way
        crashes = 2
        resume_args = ["workflow", "resume", execution.id]
        kill_runner_when(ax_env, tmp_path, resume_args, started("d"), rng.uniform(0, 0.08))
    result = run_ax("workflow", "resume", execution.id, "--format", "json")
    if result.returncode == 2 and "is completed" in result.stderr:
        pass  # the kill came after the run had finished
    else:
        assert result.returncode == 0, (name, result.stderr)
        document = json.loads(result.stdout)
        assert document["resumeCount"] >= 1
    check_ledger_and_store(tmp_path / "ax.db", ledger, execution.id, crashes)


def test_recover_resumes_every_orphan(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    path = write_workflow(tmp_path, CRASH_FLOW)
    kill_runner_when(ax_env, tmp_path, ["workflow", "run", str(path)], started("c"), 0.05)
    finished = run_ax("workflow", "run", str(path), "--format", "json")  # not an orphan
    assert finished.returncode == 0
    store = open_store(str(tmp_path / "ax.db"))
    orphan = next(e for e in store.list_executions() if e.state != "completed")
    store.close()
    result = run_ax("workflow", "recover", "--format", "json")
    assert result.returncode == 0, result.stderr
    (document,) = json.loads(result.stdout)
    assert document["executionId"] == orphan.id and document["state"] == "completed"
    again = run_ax("workflow", "recover", "--format", "json")
    assert json.loads(again.stdout) == []


def test_pausing_an_orphan_closes_its_interrupted_attempt(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """`pause` on an execution whose runner died pauses it directly: the attempt the dead
    runner left `running` is not running any more, so the paused execution must not show it
    as such; it is closed as interrupted and runs again on resume."""
    path = write_workflow(tmp_path, CRASH_FLOW)
    kill_runner_when(ax_env, tmp_path, ["workflow", "run", str(path)], started("a"), 0.05)
    store = open_store(str(tmp_path / "ax.db"))
    (execution,) = store.list_executions()
    store.close()
    assert run_ax("workflow", "pause", execution.id).returncode == 0
    status = json.loads(run_ax("workflow", "status", execution.id, "--format", "json").stdout)
    assert status["state"] == "paused"
    (checkpoint,) = json.loads(
        run_ax("workflow", "checkpoints", execution.id, "--format", "json").stdout
    )
    assert "a" in checkpoint["pendingSteps"] and "a" not in checkpoint["completedSteps"]
    assert status["steps"]["a"]["state"] == "cancelled", status["steps"]
    assert all(s["state"] != "running" for s in status["steps"].values()), status["steps"]
    events = json.loads(run_ax("workflow", "events", execution.id, "--format", "json").stdout)
    cancelled = {e["stepKey"] for e in events if e["type"] == "step_cancelled"}
    assert cancelled == {k for k, s in status["steps"].items() if s["state"] == "cancelled"}
    result = run_ax("workflow", "resume", execution.id, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"]["a"]["attempts"] == 2
    check_ledger_and_store(tmp_path / "ax.db", ledger, execution.id, crashes=1)
