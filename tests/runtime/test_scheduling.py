"""Eager scheduling: order, overlap, slot limits and exclusive steps, judged from the
timestamps the agents themselves recorded."""

from __future__ import annotations

import random
from pathlib import Path

from tests.runtime.support import (
    agent_runs,
    by_step,
    overlaps,
    peak_concurrency,
    step,
    workflow,
)


def test_dependent_starts_before_an_unrelated_slow_branch_ends(
    run_workflow, ledger: Path, tmp_path: Path
) -> None:
    # A -> {B, C}; D after C. B is held until D has run: level-by-level scheduling would
    # hold D until B ends (and B would give up waiting after 30 s, failing the check).
    gate = tmp_path / "d-done"
    data = workflow(
        [
            step("A"),
            step("B", f"ax:wait-file={gate}", ["A"]),
            step("C", "ax:sleep=0.05", ["A"]),
            step("D", f"ax:touch={gate}", ["C"]),
        ]
    )
    run = run_workflow(data)
    assert run.outcome.state == "completed"
    runs = {r.step: r for r in agent_runs(ledger)}
    assert runs["D"].end < runs["B"].end
    assert runs["D"].start >= runs["C"].end


def test_every_step_starts_after_its_dependencies_were_committed(
    run_workflow, ledger: Path
) -> None:
    rng = random.Random(7)
    steps = []
    for i in range(14):
        deps = sorted({f"s{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))})
        check = f"ax:check-deps={','.join(deps)}" if deps else ""
        steps.append(step(f"s{i}", f"{check} ax:sleep={rng.choice([0, 0.02, 0.08])}", deps))
    run = run_workflow(workflow(steps, config={"parallelism": 4}))
    assert run.outcome.state == "completed", run.outcome
    runs = {r.step: r for r in agent_runs(ledger)}
    for spec in steps:
        for dep in spec["dependencies"]:
            assert runs[dep].end is not None and runs[dep].end <= runs[spec["key"]].start


def test_peak_concurrency_equals_parallelism(run_workflow, ledger: Path) -> None:
    data = workflow([step(f"w{i}", "ax:sleep=0.5") for i in range(8)], config={"parallelism": 3})
    assert run_workflow(data).outcome.state == "completed"
    runs = agent_runs(ledger)
    assert len(runs) == 8
    assert peak_concurrency(runs) == 3


def test_exclusive_step_overlaps_nothing(run_workflow, ledger: Path) -> None:
    steps = [step(f"w{i}", "ax:sleep=0.3") for i in range(6)]
    steps[2] = step("solo", "ax:sleep=0.1", parallel=False)
    steps.append(step("after", "ax:sleep=0.05", ["solo"], parallel=False))
    run = run_workflow(workflow(steps, config={"parallelism": 4}))
    assert run.outcome.state == "completed"
    runs = agent_runs(ledger)
    assert peak_concurrency(runs) > 1  # the others did run side by side
    for key in ("solo", "after"):
        alone = by_step(runs)[key][0]
        assert not any(overlaps(alone, other) for other in runs if other.step != key)
