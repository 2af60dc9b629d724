"""Retries, backoff, the retryable-kinds filter and timeouts that kill whole process groups."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from tests.conftest import RunAx
from tests.runtime.support import agent_runs, assert_dead, step, workflow, write_workflow


def test_retry_delays_grow_and_events_carry_them(run_workflow, ledger: Path) -> None:
    policy = {"maxRetries": 3, "retryDelayMs": 100, "retryBackoffMultiplier": 2.0}
    run = run_workflow(workflow([step("flaky", "ax:fail-attempts=3", retryPolicy=policy)]))
    assert run.outcome.state == "completed"
    assert [r.attempt for r in agent_runs(ledger)] == [1, 2, 3, 4]
    attempts = run.attempts()
    # the engine's own timestamps: end of one attempt to the start of the next
    gaps = [b.started_at - a.completed_at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] < gaps[1] < gaps[2]
    for gap, base in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= base
    retrying = [e for e in run.events() if e.type == "step_retrying"]
    assert [e.data["attempt"] for e in retrying] == [2, 3, 4]
    for event, base in zip(retrying, (100, 200, 400), strict=True):
        assert base <= event.data["delayMs"] <= base * 1.1 + 1
        assert event.data["errorKind"] == "provider_error"
    assert [a.state for a in attempts] == ["failed", "failed", "failed", "completed"]
    assert "planned failure of attempt 1" in (attempts[0].error_message or "")


def test_only_retryable_kinds_retry(run_workflow, ledger: Path) -> None:
    policy = {"maxRetries": 3, "retryDelayMs": 10, "retryableErrors": ["timeout"]}
    run = run_workflow(workflow([step("once", "ax:fail-always", retryPolicy=policy)]))
    assert run.outcome.state == "failed"
    assert len(agent_runs(ledger)) == 1
    assert run.latest()["once"].error_kind == "provider_error"


def test_config_max_retries_is_the_default(run_workflow, ledger: Path) -> None:
    data = workflow([step("flaky", "ax:fail-always")], config={"maxRetries": 1})
    run = run_workflow(data)
    assert run.outcome.state == "failed"
    assert [r.attempt for r in agent_runs(ledger)] == [1, 2]


def test_a_partial_retry_policy_keeps_the_workflows_retries(run_ax: RunAx, tmp_path: Path) -> None:
    """`retryPolicy: {retryDelayMs: 10}` under `config.maxRetries: 2` once gave one attempt:
    the policy's unset maxRetries counted as 0. Unset fields inherit from `config`; an
    explicit 0 still means no retry."""
    data = workflow(
        [
            step("partial", "ax:fail-attempts=2", retryPolicy={"retryDelayMs": 10}),
            step("none", "ax:fail-attempts=1", retryPolicy={"maxRetries": 0}),
        ],
        config={"maxRetries": 2, "continueOnError": True},
    )
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json")
    steps = json.loads(result.stdout)["steps"]
    assert (steps["partial"]["state"], steps["partial"]["attempts"]) == ("completed", 3)
    assert (steps["none"]["state"], steps["none"]["attempts"]) == ("failed", 1)


def test_attempt_timeout_kills_the_whole_process_group(
    run_workflow, ledger: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    prompt = f"ax:sleep=30 ax:ignore-term ax:grandchild={pidfile}"
    run = run_workflow(workflow([step("slow", prompt, timeoutMs=400)]))
    assert run.outcome.state == "failed"
    latest = run.latest()["slow"]
    assert latest.state == "failed" and latest.error_kind == "timeout"
    (agent,) = agent_runs(ledger)
    assert agent.end is None
    assert_dead(agent.pid)
    assert_dead(int(pidfile.read_text()))


def test_agent_timeout_applies_when_the_step_has_none(run_workflow, ledger: Path) -> None:
    quick = {**workflow([])["agents"]["rec"], "timeoutMs": 300}
    data = workflow([step("slow", "ax:sleep=30", agent="quick")], agents={"quick": quick})
    run = run_workflow(data)
    assert run.latest()["slow"].error_kind == "timeout"


def test_workflow_timeout_fails_the_execution_and_cancels_what_runs(
    run_workflow, ledger: Path
) -> None:
    data = workflow(
        [
            step("a", "ax:sleep=0.05"),
            step("long", "ax:sleep=30", ["a"]),
            step("next", "x", ["long"]),
        ],
        config={"timeout": 1200},
    )
    run = run_workflow(data)
    assert run.outcome.state == "failed"
    assert "timed out" in (run.outcome.error or "")
    latest = run.latest()
    assert latest["a"].state == "completed"
    assert latest["long"].state == "cancelled"
    # never started, but listed: cancelled with no attempt
    assert (latest["next"].state, latest["next"].attempt) == ("cancelled", 0)
    assert run.event_types()[-1] == "workflow_failed"
    for agent in agent_runs(ledger):
        assert_dead(agent.pid)
