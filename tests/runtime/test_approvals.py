"""Approval gates through the real CLI (SPEC section 8): a gate waits while the rest of the
DAG goes on; `approve` / `reject` decide it from another process (the first decision wins),
also while the execution is paused or its runner is gone; the deadline is absolute and
survives a restart; `pending` lists what waits; a forEach item is decided as `gate[2]`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AxResult, RunAx
from tests.runtime.support import (
    AX,
    events,
    finish,
    start_ax,
    status,
    step,
    wait_until,
    workflow,
    write_workflow,
)

PENDING_KEYS = {"executionId", "workflowName", "stepKey", "message", "requestedAt", "expiresAt"}


def gate(
    key: str, message: str = "Go on?", deps: list[str] | None = None, **approval: Any
) -> dict[str, Any]:
    return {"key": key, "dependencies": deps or [], "approval": {"message": message, **approval}}


def pending(run_ax: RunAx, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = run_ax("workflow", "pending", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def wait_for_gates(
    run_ax: RunAx, count: int = 1, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found[:] = pending(run_ax, env)
        return len(found) >= count

    wait_until(enough, timeout=30, interval=0.05)
    return found


def start_run(
    tmp_path: Path, ax_env: dict[str, str], data: dict[str, Any]
) -> subprocess.Popen[str]:
    path = write_workflow(tmp_path, data)
    return start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)


def as_epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_approve_completes_the_gate_while_the_rest_of_the_dag_went_on(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow(
        [
            step("build", "ax:echo built"),
            gate("review", "Publish {{build}} for {{who}}?", ["build"], timeoutMs=600_000),
            step("side", "ax:echo side", ["build"]),
            step("publish", "ax:echo after {{review}}", ["review"]),
        ],
        name="release",
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(
        ["workflow", "run", str(path), "--format", "json", "--context", '{"who": "ops"}'],
        env=ax_env,
        cwd=tmp_path,
    )
    (entry,) = [e for e in wait_for_gates(run_ax) if e["workflowName"] == "release"]
    execution_id = entry["executionId"]
    assert set(entry) == PENDING_KEYS
    assert (entry["stepKey"], entry["message"]) == ("review", "Publish ax:echo built for ops?")
    wait = as_epoch(entry["expiresAt"]) - as_epoch(entry["requestedAt"])
    assert wait == pytest.approx(600, abs=0.01)  # an absolute deadline: requested + timeoutMs
    # The gate holds no slot and the rest of the DAG goes on: `side` completes meanwhile.
    wait_until(lambda: status(run_ax, execution_id)["steps"]["side"]["state"] == "completed")
    steps = status(run_ax, execution_id)["steps"]
    assert (steps["review"]["state"], steps["publish"]["state"]) == ("waiting", "pending")
    table = run_ax("workflow", "status", execution_id)
    assert f"waiting: ax workflow approve {execution_id} review" in table.stdout
    (requested,) = [e for e in events(run_ax, execution_id) if e["type"] == "approval_requested"]
    assert requested["stepKey"] == "review"
    assert requested["data"]["approveCommand"] == f"ax workflow approve {execution_id} review"
    assert requested["data"]["expiresAt"] == entry["expiresAt"]

    approved = run_ax(
        "workflow", "approve", execution_id[:8], "review", "--comment", "ship it",
        env={"AX_USER": "alice"},
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert f"Approved step 'review' of execution {execution_id} (by alice)" in approved.stdout
    code, out, err = finish(runner)
    assert code == 0, err
    document = json.loads(out)
    output = document["stepResults"]["review"]
    assert {k: output[k] for k in ("approved", "by", "comment")} == {
        "approved": True,
        "by": "alice",
        "comment": "ship it",
    }
    assert as_epoch(output["at"]) >= as_epoch(entry["requestedAt"])
    assert document["steps"]["publish"]["state"] == "completed"
    assert "alice" in document["stepResults"]["publish"]  # dependents see the decision
    types = [e["type"] for e in events(run_ax, execution_id) if e["stepKey"] == "review"]
    assert types == ["step_started", "approval_requested", "approval_granted", "step_completed"]
    assert pending(run_ax) == []


def test_reject_fails_the_gate_with_kind_rejected(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow([gate("review"), step("publish", "x", ["review"])])
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    rejected = run_ax(
        "workflow", "reject", entry["executionId"], "review", "--comment", "not today",
        env={"AX_USER": "bob"},
    )  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr
    code, out, err = finish(runner)
    assert code == 1, err
    document = json.loads(out)
    review = document["steps"]["review"]
    assert (review["state"], review["errorKind"], review["attempts"]) == ("failed", "rejected", 1)
    assert review["error"] == "rejected: rejected by bob: not today"
    assert document["steps"]["publish"]["state"] == "cancelled"
    (event,) = [e for e in events(run_ax, entry["executionId"]) if e["type"] == "approval_rejected"]
    assert (event["data"]["by"], event["data"]["comment"]) == ("bob", "not today")


def test_a_rejected_optional_gate_lets_its_dependents_run(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow([{**gate("review"), "optional": True}, step("after", "x", ["review"])])
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    assert run_ax("workflow", "reject", entry["executionId"], "review").returncode == 0
    code, out, err = finish(runner)
    assert code == 0, err
    steps = json.loads(out)["steps"]
    assert (steps["review"]["state"], steps["after"]["state"]) == ("failed", "completed")


@pytest.mark.parametrize(("on_timeout", "exit_code"), [("reject", 1), ("approve", 0)])
def test_past_its_timeout_on_timeout_decides(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, on_timeout: str, exit_code: int
) -> None:
    data = workflow([gate("review", timeoutMs=300, onTimeout=on_timeout)])
    path = write_workflow(tmp_path, data)
    result = run_ax("workflow", "run", str(path), "--format", "json")
    assert result.returncode == exit_code, result.stderr
    document = json.loads(result.stdout)
    review = document["steps"]["review"]
    decided = [
        e for e in events(run_ax, document["executionId"]) if e["type"].startswith("approval_")
    ]
    assert [e["type"] for e in decided] == [
        "approval_requested",
        "approval_granted" if on_timeout == "approve" else "approval_rejected",
    ]
    assert decided[1]["data"]["by"] == "timeout"
    assert decided[1]["data"]["at"] == decided[0]["data"]["expiresAt"]  # decided as of then
    if on_timeout == "approve":
        assert review["state"] == "completed"
        assert document["stepResults"]["review"]["by"] == "timeout"
    else:
        assert (review["state"], review["errorKind"]) == ("failed", "rejected")
        assert "rejected by timeout" in review["error"]


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_of_two_racing_approvers_exactly_one_wins(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, db: str, request: pytest.FixtureRequest
) -> None:
    if db == "postgres":
        ax_env = {**ax_env, "AX_DB": request.getfixturevalue("pg_url")}
    path = write_workflow(tmp_path, workflow([gate("review")]))
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    (entry,) = wait_for_gates(run_ax, env=ax_env)
    racers = [
        subprocess.Popen(
            [AX, "workflow", "approve", entry["executionId"], "review"],
            env={**ax_env, "AX_USER": user},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user in ("ann", "ben")
    ]
    results = [AxResult(p.wait(30), *p.communicate()) for p in racers]
    assert sorted(r.returncode for r in results) == [0, 2], results
    winner = "ann" if results[0].returncode == 0 else "ben"
    loser = results[1] if winner == "ann" else results[0]
    loser.assert_clean_error(2)
    assert f"already approved by {winner} at " in loser.stderr
    code, out, err = finish(runner)
    assert code == 0, err
    assert json.loads(out)["stepResults"]["review"]["by"] == winner


def test_a_decision_given_while_paused_is_where_resume_continues(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow([gate("review", timeoutMs=600_000), step("publish", "x", ["review"])])
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    execution_id = entry["executionId"]
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    code, out, err = finish(runner)  # a pausing run does not wait for its gates
    assert code == 4, err
    # No live view (stderr is a pipe): the log says the run waits and what decides it.
    assert "Waiting for approval: step review: Go on? (until " in err
    assert f"  approve: ax workflow approve {execution_id} review\n" in err
    assert f"  reject:  ax workflow reject {execution_id} review\n" in err
    assert json.loads(out)["steps"]["review"]["state"] == "waiting"
    assert [e["stepKey"] for e in pending(run_ax)] == ["review"]  # still listed, decidable
    approved = run_ax("workflow", "approve", execution_id, "review", env={"AX_USER": "carol"})
    assert approved.returncode == 0, approved.stderr
    assert f"ax workflow resume {execution_id}" in approved.stdout
    assert status(run_ax, execution_id)["steps"]["review"]["state"] == "waiting"  # not applied
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["stepResults"]["review"]["by"] == "carol"
    assert document["steps"]["publish"]["state"] == "completed"


def test_a_resumed_run_tells_again_which_gates_wait_and_how_to_decide_them(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow([gate("review", "Ship it?", timeoutMs=600_000)])
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    execution_id = entry["executionId"]
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    assert finish(runner)[0] == 4
    resumer = start_ax(
        ["workflow", "resume", execution_id, "--format", "json"], env=ax_env, cwd=tmp_path
    )
    assert resumer.stderr is not None
    told: list[str] = []
    while not told or not told[-1].startswith("  reject:"):  # the notice, before deciding
        line = resumer.stderr.readline()
        assert line, f"stderr ended before the gate was told: {told}"
        told.append(line)
    assert "Waiting for approval: step review: Ship it? (until " in "".join(told)
    assert f"  approve: ax workflow approve {execution_id} review\n" in told
    assert run_ax("workflow", "approve", execution_id, "review").returncode == 0
    code, _out, err = finish(resumer)
    assert code == 0, err
    assert "Waiting for approval" not in err  # told once: the gate opened before the resume


def test_a_decision_given_while_the_runner_is_gone_is_where_resume_continues(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow([gate("review", timeoutMs=600_000), step("publish", "x", ["review"])])
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    runner.send_signal(signal.SIGKILL)
    finish(runner)
    execution_id = entry["executionId"]
    rejected = run_ax("workflow", "reject", execution_id, "review", "--comment", "gone")
    assert rejected.returncode == 0, rejected.stderr
    assert "has no runner" in rejected.stdout
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 1, resumed.stderr
    review = json.loads(resumed.stdout)["steps"]["review"]
    assert (review["state"], review["errorKind"]) == ("failed", "rejected")
    assert review["error"].endswith(": gone")


def test_the_deadline_survives_a_restart(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow(
        [gate("review", timeoutMs=1500, onTimeout="approve"), step("next", "x", ["review"])]
    )
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    runner.send_signal(signal.SIGKILL)  # killed while it waits, long before the deadline
    finish(runner)
    deadline = as_epoch(entry["expiresAt"])
    time.sleep(max(0.0, deadline - time.time()) + 0.2)
    resumed = run_ax("workflow", "resume", entry["executionId"], "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    output = document["stepResults"]["review"]
    assert (output["approved"], output["by"]) == (True, "timeout")
    assert output["at"] == entry["expiresAt"]  # decided as of the stored deadline
    assert document["steps"]["next"]["state"] == "completed"


def test_a_gate_inside_a_for_each_is_decided_by_its_item_key(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow(
        [
            {
                **gate("gate", "Ship {{thing}} (item {{index}})?"),
                "forEach": {"items": '["a", "b", "c"]', "as": "thing"},
            },
            step("after", "x", ["gate"]),
        ]
    )
    runner = start_run(tmp_path, ax_env, data)
    entries = wait_for_gates(run_ax, 3)
    execution_id = entries[0]["executionId"]
    messages = {e["stepKey"]: e["message"] for e in entries}
    assert messages == {
        "gate[0]": "Ship a (item 0)?",
        "gate[1]": "Ship b (item 1)?",
        "gate[2]": "Ship c (item 2)?",
    }
    table = run_ax("workflow", "status", execution_id)
    assert f"waiting: ax workflow approve {execution_id} 'gate[2]'" in table.stdout
    assert run_ax("workflow", "approve", execution_id, "gate[2]").returncode == 0
    wait_until(lambda: status(run_ax, execution_id)["steps"]["gate[2]"]["state"] == "completed")
    steps = status(run_ax, execution_id)["steps"]
    assert [steps[f"gate[{i}]"]["state"] for i in range(3)] == ["waiting", "waiting", "completed"]
    assert {e["stepKey"] for e in pending(run_ax)} == {"gate[0]", "gate[1]"}
    for key in ("gate[0]", "gate[1]"):
        assert (
            run_ax("workflow", "approve", execution_id, key, env={"AX_USER": "dee"}).returncode == 0
        )
    code, out, err = finish(runner)
    assert code == 0, err
    outputs = json.loads(out)["stepResults"]["gate"]
    assert [o["approved"] for o in outputs] == [True, True, True]
    assert [o["by"] for o in outputs][:2] == ["dee", "dee"]


def test_pending_lists_every_waiting_gate_across_executions(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    first = start_run(tmp_path, ax_env, workflow([gate("one", "First?")], name="flow-a"))
    wait_for_gates(run_ax, 1)
    (tmp_path / "b").mkdir()
    second = start_run(tmp_path / "b", ax_env, workflow([gate("two", "Second?")], name="flow-b"))
    entries = wait_for_gates(run_ax, 2)
    assert [(e["workflowName"], e["stepKey"], e["message"]) for e in entries] == [
        ("flow-a", "one", "First?"),
        ("flow-b", "two", "Second?"),
    ]  # oldest first
    assert all(set(e) == PENDING_KEYS and e["expiresAt"] is None for e in entries)
    table = run_ax("workflow", "pending")
    assert "flow-a" in table.stdout and "Second?" in table.stdout and "never" in table.stdout
    for entry, runner in zip(entries, (first, second), strict=True):
        assert run_ax("workflow", "approve", entry["executionId"], entry["stepKey"]).returncode == 0
        assert finish(runner)[0] == 0
    assert pending(run_ax) == []
    assert "No approval is waiting" in run_ax("workflow", "pending").stderr


def test_bad_decisions_are_one_error_line_and_exit_2(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    data = workflow(
        [step("build", "x"), gate("review", deps=["build"]), gate("later", deps=["review"])]
    )
    runner = start_run(tmp_path, ax_env, data)
    (entry,) = wait_for_gates(run_ax)
    execution_id = entry["executionId"]

    def refused(*args: str) -> str:
        result = run_ax("workflow", *args)
        result.assert_clean_error(2)
        return result.stderr

    assert "no execution with ID 'ffffffff'" in refused("approve", "ffffffff", "review")
    assert "has no step 'reveiw' (did you mean 'review'?)" in refused(
        "approve", execution_id, "reveiw"
    )
    assert "is not an approval" in refused("approve", execution_id, "build")
    assert "has not asked for a decision yet" in refused("reject", execution_id, "later")
    assert run_ax("workflow", "approve", execution_id, "review").returncode == 0
    assert "was already approved by" in refused("reject", execution_id, "review")
    wait_for_gates(run_ax)  # `later` opens once `review` is applied
    assert run_ax("workflow", "cancel", execution_id).returncode == 0
    assert finish(runner)[0] == 3
    assert "is cancelled: there is nothing to approve" in refused("approve", execution_id, "later")
    assert status(run_ax, execution_id)["steps"]["later"]["state"] == "cancelled"
    assert pending(run_ax) == []  # a cancelled execution's gates wait for nobody


def test_a_bad_ax_user_is_refused(run_ax: RunAx) -> None:
    result = run_ax("workflow", "pending", env={"AX_USER": "eve\x1b[2J"})
    result.assert_clean_error(2)
    assert "AX_USER" in result.stderr


def test_the_decision_commands_are_documented_in_help(run_ax: RunAx) -> None:
    for command in ("approve", "reject", "pending"):
        result = run_ax("workflow", command, "--help")
        assert result.returncode == 0, result.stderr
    assert "--comment" in run_ax("workflow", "approve", "--help").stdout


def test_the_live_view_says_which_command_approves(tmp_path: Path) -> None:
    """Fed the operations a gate's opening commits (a forEach item here), the live view
    prints the exact command under its table, and drops it once the gate is decided."""
    import io

    from rich.console import Console

    from automatosx.cli.live_progress import LiveProgress
    from automatosx.definition.models import ApprovalSpec
    from automatosx.definition.validation import validate_document
    from automatosx.runtime.approvals import apply_decision, request_approval
    from automatosx.store.records import ApprovalRecord, StepInstanceRecord

    data = workflow([{**gate("gate"), "forEach": {"items": "[1, 2, 3]"}}])
    console = Console(file=io.StringIO(), record=True, width=200, color_system=None)
    view = LiveProgress(validate_document(data), console)
    item = StepInstanceRecord("3f2a0000-e1", "gate[2]", "gate", 0, "pending", "gate", 2)
    opened = request_approval(item, ApprovalSpec(message="Go?"), message="Go?", now=1.0)
    view.on_commit(opened)
    console.print(view.render())
    assert "waiting: ax workflow approve 3f2a0000-e1 'gate[2]'" in console.export_text()
    decision = ApprovalRecord("3f2a0000-e1", "gate[2]", "Go?", 1.0, None, "reject", "approved", "x")
    ops, _ = apply_decision(
        item.evolve(state="waiting", attempt=1), decision, optional=False, now=2
    )
    view.on_commit(ops)
    console.print(view.render())
    assert "waiting:" not in console.export_text()


def test_the_benchmark_prints_the_waiting_runners_cpu_time() -> None:
    """The machinery of `benchmarks/approval_wait.py`, with a one-second wait (its figure
    is the benchmark's to judge, not this test's)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "benchmarks/approval_wait.py", "--seconds", "1"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) == {"waited_s", "cpu_s", "cpu_share_of_a_core"}
    assert figures["waited_s"] >= 1 and figures["cpu_s"] >= 0


def test_an_approval_after_the_deadline_is_refused_and_the_timeout_decides(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    runner = start_run(tmp_path, ax_env, workflow([gate("review", timeoutMs=1200)]))
    (entry,) = wait_for_gates(run_ax)
    runner.send_signal(signal.SIGKILL)  # nobody watches the deadline now
    finish(runner)
    time.sleep(max(0.0, as_epoch(entry["expiresAt"]) - time.time()) + 0.2)
    late = run_ax("workflow", "approve", entry["executionId"], "review")
    late.assert_clean_error(2)
    assert f"was already rejected by timeout at {entry['expiresAt']}" in late.stderr
    resumed = run_ax("workflow", "resume", entry["executionId"], "--format", "json")
    assert resumed.returncode == 1, resumed.stderr
    assert "rejected by timeout" in json.loads(resumed.stdout)["steps"]["review"]["error"]


def test_recover_runs_orphans_side_by_side_so_a_waiting_gate_holds_up_no_other(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    gated = start_run(tmp_path, ax_env, workflow([gate("review", timeoutMs=600_000)], name="g"))
    (entry,) = wait_for_gates(run_ax)
    up, go = tmp_path / "up", tmp_path / "go"
    held = workflow([step("slow", f"ax:announce={up} ax:wait-file={go}")], name="held")
    plain = start_run(tmp_path, ax_env, held)
    wait_until(up.exists)
    for runner in (gated, plain):
        runner.send_signal(signal.SIGKILL)
        finish(runner)
    go.touch()  # the plain orphan can finish as soon as it is resumed
    recover = start_ax(["workflow", "recover", "--format", "json"], env=ax_env, cwd=tmp_path)
    runs = {r["workflowName"]: r for r in json.loads(run_ax("workflow", "runs", "--format",
                                                            "json").stdout)}  # fmt: skip
    held_id = runs["held"]["executionId"]
    # The plain orphan completes while the other one's gate still waits.
    wait_until(lambda: status(run_ax, held_id)["state"] == "completed")
    assert status(run_ax, entry["executionId"])["steps"]["review"]["state"] == "waiting"
    assert run_ax("workflow", "approve", entry["executionId"], "review").returncode == 0
    code, out, err = finish(recover)
    assert code == 0, err
    assert f"approve: ax workflow approve {entry['executionId']} review" in err
    documents = json.loads(out)
    assert {d["workflowName"]: d["state"] for d in documents} == {
        "g": "completed",
        "held": "completed",
    }
    assert [d["executionId"] for d in documents] == [entry["executionId"], held_id]  # oldest first
