"""Pause, resume and cancel from a second process; refusals; racing resumes; a stale owner
whose lease was taken over while it was stopped (SIGSTOP) has its writes refused."""

from __future__ import annotations

import json
import os
import signal
import sys
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
    only_execution_id,
    pause_and_release,
    release_after_pause_seen,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def two_then_one(gate: Path) -> dict[str, object]:
    """a and b run side by side until the test creates `gate`; c needs both."""
    held = f"ax:wait-file={gate}"
    return workflow(
        [step("a", held), step("b", held), step("c", "x", ["a", "b"])],
        config={"parallelism": 2},
    )


def test_pause_from_another_process_then_resume_without_rerunning(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    path = write_workflow(tmp_path, two_then_one(gate))
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: len(agent_runs(ledger)) == 2)
    execution_id = only_execution_id(tmp_path)
    assert run_ax("workflow", "pause", execution_id[:8]).returncode == 0
    paused_at = time.time()
    release_after_pause_seen(gate)
    code, out, err = finish(runner)
    assert code == 4, err
    document = json.loads(out)
    assert document["state"] == "paused"
    # running steps finished and kept their results; nothing new started
    assert {k: s["state"] for k, s in document["steps"].items()} == {
        "a": "completed",
        "b": "completed",
        "c": "pending",
    }
    assert all(r.start < paused_at for r in agent_runs(ledger))
    store = open_store(str(tmp_path / "ax.db"))
    (checkpoint,) = store.list_checkpoints(execution_id)
    assert checkpoint.created_by == "pause" and checkpoint.state == "paused"
    assert checkpoint.completed_steps == ["a", "b"] and checkpoint.pending_steps == ["c"]
    assert store.get_execution(execution_id).lease_owner is None

    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["state"] == "completed" and document["resumeCount"] == 1
    runs = by_step(agent_runs(ledger))
    assert {k: len(v) for k, v in runs.items()} == {"a": 1, "b": 1, "c": 1}
    types = [e.type for e in store.list_events(execution_id)]
    assert types.index("workflow_paused") < types.index("checkpoint_restored")
    assert types.index("checkpoint_restored") < types.index("workflow_resumed")
    assert types[-1] == "workflow_completed"
    store.close()


def test_cancel_from_another_process_kills_running_steps(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    prompt = f"ax:sleep=30 ax:ignore-term ax:grandchild={tmp_path / 'gc.pid'}"
    path = write_workflow(tmp_path, workflow([step("long", prompt), step("next", "x", ["long"])]))
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id = only_execution_id(tmp_path)
    cancelled = run_ax("workflow", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "Cancelled" in cancelled.stdout
    code, out, err = finish(runner)
    assert code == 3, err
    document = json.loads(out)
    assert document["state"] == "cancelled"
    assert document["steps"]["long"]["state"] == "cancelled"
    assert_dead(agent_runs(ledger)[0].pid)
    assert_dead(int((tmp_path / "gc.pid").read_text()))
    # the result never recorded: the killed agent wrote no end, the step stays cancelled
    run_ax("workflow", "resume", execution_id).assert_clean_error(2)


def test_cancel_a_paused_execution_directly(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    path = write_workflow(tmp_path, two_then_one(gate))
    runner = start_ax(["workflow", "run", str(path)], env=ax_env, cwd=tmp_path)
    wait_until(lambda: len(agent_runs(ledger)) == 2)
    execution_id = only_execution_id(tmp_path)
    run_ax("workflow", "pause", execution_id)
    release_after_pause_seen(gate)
    assert finish(runner)[0] == 4
    assert run_ax("workflow", "cancel", execution_id).returncode == 0
    store = open_store(str(tmp_path / "ax.db"))
    execution = store.get_execution(execution_id)
    assert execution.state == "cancelled" and execution.lease_owner is None
    assert [e.type for e in store.list_events(execution_id)][-1] == "workflow_cancelled"
    store.close()
    run_ax("workflow", "pause", execution_id).assert_clean_error(2)
    run_ax("workflow", "cancel", execution_id).assert_clean_error(2)


def test_resume_refuses_running_completed_and_unknown(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    path = write_workflow(tmp_path, workflow([step("a", f"ax:wait-file={gate}")]))
    runner = start_ax(["workflow", "run", str(path)], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id = only_execution_id(tmp_path)
    refused = run_ax("workflow", "resume", execution_id)
    refused.assert_clean_error(2)
    assert "is running" in refused.stderr
    gate.touch()
    assert finish(runner)[0] == 0
    done = run_ax("workflow", "resume", execution_id)
    done.assert_clean_error(2)
    assert "completed" in done.stderr
    run_ax("workflow", "resume", "00000000-no-such").assert_clean_error(2)
    run_ax("workflow", "pause", execution_id).assert_clean_error(2)
    assert len(agent_runs(ledger)) == 1


def test_two_racing_resumes_one_wins(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    data = workflow([step("a", f"ax:wait-file={gate}"), step("b", "ax:sleep=1.0", ["a"])])
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path)], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id = only_execution_id(tmp_path)
    run_ax("workflow", "pause", execution_id)
    release_after_pause_seen(gate)
    assert finish(runner)[0] == 4
    racers = [
        start_ax(["workflow", "resume", execution_id], env=ax_env, cwd=tmp_path) for _ in range(2)
    ]
    results = [finish(racer) for racer in racers]
    assert sorted(code for code, _, _ in results) == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert loser.strip().splitlines()[-1].startswith("error: ")
    assert len(by_step(agent_runs(ledger))["b"]) == 1


def test_stale_owner_after_sigstop_has_its_writes_refused(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    env = {**ax_env, "AX_LEASE_SECONDS": "0.6"}
    path = write_workflow(tmp_path, workflow([step("a", "ax:sleep=1.2"), step("b", "x", ["a"])]))
    stale = start_ax(["workflow", "run", str(path)], env=env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id = only_execution_id(tmp_path)
    os.kill(stale.pid, signal.SIGSTOP)
    try:
        time.sleep(0.9)  # past the lease
        taker = start_ax(["workflow", "resume", execution_id], env=env, cwd=tmp_path)
        wait_until(lambda: len(agent_runs(ledger)) == 2)  # the taker re-runs `a`
    finally:
        os.kill(stale.pid, signal.SIGCONT)
    code, _, err = finish(stale)
    assert code == 2 and "error:" in err, err
    assert finish(taker)[0] == 0
    store = open_store(str(tmp_path / "ax.db"))
    attempts = [(r.step_key, r.attempt, r.state) for r in store.list_step_executions(execution_id)]
    assert attempts == [("a", 1, "cancelled"), ("a", 2, "completed"), ("b", 1, "completed")]
    assert store.get_execution(execution_id).state == "completed"
    store.close()
    first = agent_runs(ledger)[0]
    assert first.attempt == 1
    assert_dead(first.pid)


def test_resume_runs_the_definition_the_execution_started_with(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """A workflow is stored by name and version, so running an edited file under the same
    version replaces the workflow's stored definition. Resuming a paused execution once
    silently ran the edited steps (its a, b, c became a, z); each execution now keeps the
    definition it started with, and resume runs exactly that."""
    gate = tmp_path / "gate"
    original = two_then_one(gate)
    path = write_workflow(tmp_path, original)
    runner = start_ax(["workflow", "run", str(path)], env=ax_env, cwd=tmp_path)
    wait_until(lambda: len(agent_runs(ledger)) == 2)
    execution_id = only_execution_id(tmp_path)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    release_after_pause_seen(gate)
    assert finish(runner)[0] == 4

    write_workflow(tmp_path, workflow([step("a", "x"), step("z", "edited", ["a"])]))
    assert run_ax("workflow", "run", str(path)).returncode == 0
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert [r.step for r in agent_runs(ledger)].count("z") == 1  # its own run, not the resume
    document = json.loads(resumed.stdout)
    assert (document["state"], sorted(document["steps"])) == ("completed", ["a", "b", "c"])


def test_resume_from_another_directory_runs_where_the_execution_started(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """A paused run resumed from another shell's directory failed on the relative path of
    its agent's command, for good. The execution records its working directory; resume
    runs its steps there, wherever it is typed."""
    project = tmp_path / "project"
    (project / "tools").mkdir(parents=True)
    agent = project / "tools" / "agent.py"
    agent.write_text(Path(__file__).with_name("agents").joinpath("recording_agent.py").read_text())
    gate = tmp_path / "gate"
    data = workflow(
        [step("a", f"ax:wait-file={gate}"), step("b", "x", ["a"])],
        agents={"rec": {"provider": "command", "command": [sys.executable, "tools/agent.py"]}},
    )
    path = write_workflow(project, data)
    env = {**ax_env, "AX_DB": str(tmp_path / "ax.db")}
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=env, cwd=project)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id, _ = pause_and_release(run_ax, runner, tmp_path, gate)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["state"] == "completed"
    assert document["workdir"] == str(project.resolve())
    assert [r.step for r in agent_runs(ledger)] == ["a", "b"]


@pytest.mark.parametrize(("request_", "state"), [("pause", "paused"), ("cancel", "cancelled")])
def test_a_request_recorded_as_a_step_ends_is_obeyed_before_anything_starts(
    run_workflow, ledger: Path, request_: str, state: str
) -> None:
    """`a` records the request as its very last act, so the runner almost never sees it
    through its 100 ms poll: it must read the request itself before starting `b`."""
    data = workflow([step("a", f"ax:request={request_}"), step("b", "x", ["a"])])
    run = run_workflow(data)
    assert run.outcome.state == state
    assert [r.step for r in agent_runs(ledger)] == ["a"]
    latest = run.latest()
    assert latest["a"].state == "completed"
    assert (latest["b"].state, latest["b"].attempt) == (
        ("pending", 0) if request_ == "pause" else ("cancelled", 0)
    )


def test_a_retry_due_while_pausing_waits_for_the_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """A step that fails (retryably) while the execution is pausing does not wait out its
    backoff: the run pauses at once and the retry is the first thing the resume does."""
    gate = tmp_path / "gate"
    slow_retry = {"maxRetries": 1, "retryDelayMs": 60_000}
    data = workflow(
        [step("flaky", f"ax:wait-file={gate} ax:fail-attempts=1", retryPolicy=slow_retry)]
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id, paused = pause_and_release(run_ax, runner, tmp_path, gate, timeout=30)
    entry = paused["steps"]["flaky"]  # within 30 s: not 60 s of backoff
    assert (entry["state"], entry["attempts"], entry["errorKind"]) == (
        "pending", 1, "provider_error",
    )  # fmt: skip
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json", timeout=30)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"]["flaky"]["attempts"] == 2


def test_cancelling_during_a_backoff_names_the_retry_that_will_not_run(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    slow_retry = {"maxRetries": 1, "retryDelayMs": 60_000}
    data = workflow(
        [step("flaky", "ax:fail-attempts=1", retryPolicy=slow_retry), step("b", "x", ["flaky"])]
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: any(r.end for r in agent_runs(ledger)))
    execution_id = only_execution_id(tmp_path)
    store = open_store(str(tmp_path / "ax.db"))
    try:
        wait_until(lambda: store.list_instances(execution_id)[0].retry_at is not None)
    finally:
        store.close()
    assert run_ax("workflow", "cancel", execution_id).returncode == 0
    assert finish(runner)[0] == 3
    events = json.loads(run_ax("workflow", "events", execution_id, "--format", "json").stdout)
    cancelled = {e["stepKey"]: e["data"] for e in events if e["type"] == "step_cancelled"}
    assert cancelled["flaky"]["attempt"] == 2  # the retry that will not run
    assert cancelled["b"]["attempt"] == 1 and cancelled["b"]["reason"].startswith("not started")
    attempts = json.loads(run_ax("workflow", "status", execution_id, "--format", "json").stdout)
    assert attempts["steps"]["flaky"]["attempts"] == 1
