"""The engine over PostgreSQL: the same semantics with the multi-machine store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    by_step,
    finish,
    release_after_pause_seen,
    run_in_process,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)

pytestmark = pytest.mark.postgres


def test_retries_skips_and_events_over_postgres(
    pg_url: str, tmp_path: Path, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AX_TEST_LEDGER", str(ledger))
    data = workflow(
        [
            step("flaky", "ax:fail-attempts=1", retryPolicy={"maxRetries": 1, "retryDelayMs": 20}),
            step("bad", "ax:fail-always"),
            step("skipped", "x", ["bad"]),
            step("join", "{{flaky}}", ["flaky"]),
        ],
        config={"continueOnError": True},
    )
    store = open_store(pg_url)
    try:
        run = run_in_process(store, data, {}, workdir=tmp_path)
        assert run.outcome.state == "failed"
        states = {k: r.state for k, r in run.latest().items()}
        assert states == {
            "flaky": "completed",
            "bad": "failed",
            "skipped": "skipped",
            "join": "completed",
        }
        assert run.event_types().count("step_retrying") == 1
        assert run.event_types()[-1] == "workflow_failed"
    finally:
        store.close()


def test_pause_and_resume_over_postgres(
    run_ax: RunAx, ax_env: dict[str, str], pg_url: str, tmp_path: Path, ledger: Path
) -> None:
    env = {**ax_env, "AX_DB": pg_url}
    gate = tmp_path / "gate"
    data = workflow([step("a", f"ax:wait-file={gate}"), step("b", "x", ["a"])])
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path)], env=env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    store = open_store(pg_url)
    (execution,) = store.list_executions()
    store.close()
    assert run_ax("workflow", "pause", execution.id, env=env).returncode == 0
    release_after_pause_seen(gate)
    assert finish(runner)[0] == 4
    resumed = run_ax("workflow", "resume", execution.id, "--format", "json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "completed"
    assert {k: len(v) for k, v in by_step(agent_runs(ledger)).items()} == {"a": 1, "b": 1}


def test_cancel_sigkill_and_recover_over_postgres(
    run_ax: RunAx, ax_env: dict[str, str], pg_url: str, tmp_path: Path, ledger: Path
) -> None:
    """The rest of the control cycle through the CLI on PostgreSQL: cancelling a live run
    (exit 3, its agent killed), then a runner SIGKILLed mid-step, found and finished by
    `recover` with the interrupted step run again and the completed one not."""
    env = {**ax_env, "AX_DB": pg_url}
    gate = tmp_path / "gate"
    cancel_flow = write_workflow(tmp_path, workflow([step("a", "ax:sleep=30")], name="cancel-me"))
    runner = start_ax(["workflow", "run", str(cancel_flow)], env=env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    store = open_store(pg_url)
    (execution,) = store.list_executions()
    assert run_ax("workflow", "cancel", execution.id[:8], env=env).returncode == 0
    assert finish(runner)[0] == 3
    assert store.get_execution(execution.id).state == "cancelled"
    assert_dead(agent_runs(ledger)[0].pid)

    crash_flow = tmp_path / "crash.json"
    crash_flow.write_text(
        json.dumps(
            workflow(
                [step("first", "quick"), step("slow", f"ax:wait-file={gate}", ["first"])],
                name="crash-me",
            )
        )
    )
    runner = start_ax(["workflow", "run", str(crash_flow)], env=env, cwd=tmp_path)
    wait_until(lambda: any(r.step == "slow" for r in agent_runs(ledger)))
    runner.kill()
    finish(runner)
    gate.touch()
    recovered = run_ax("workflow", "recover", "--format", "json", env=env)
    assert recovered.returncode == 0, recovered.stderr
    (document,) = json.loads(recovered.stdout)
    assert document["workflowName"] == "crash-me" and document["state"] == "completed"
    assert document["resumeCount"] == 1
    assert document["steps"]["slow"]["attempts"] == 2
    runs = by_step(agent_runs(ledger))
    assert [r.attempt for r in runs["first"]] == [1]
    assert [r.attempt for r in runs["slow"]] == [1, 2]
    store.close()
