"""Sub-workflows (SPEC section 8): a `workflow:` step runs another file as a child execution.

Run through the real `ax` CLI on real stores: results and linkage, validation of the file
tree (cycles, a child's own problems, missing files, `with`), failures, nesting, cancel and
pause reaching the child, kill -9 then resume or recover attaching to the one child,
forEach over a sub-workflow, and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from automatosx.definition.loader import load_workflow
from automatosx.definition.subworkflows import load_subworkflows
from automatosx.runtime.control import resume_execution, start_execution
from automatosx.runtime.preparation import prepare_workflow
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.records import CreateChildExecution, PutInstance, WriteOp
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    by_step,
    command_agent,
    finish,
    kill_runner_when,
    start_ax,
    status,
    step,
    wait_until,
    workflow,
)


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def child_step(key: str, file: str, deps: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    return {"key": key, "workflow": file, "dependencies": deps or [], **fields}


def executions(tmp_path: Path) -> list[Any]:
    store = open_store(str(tmp_path / "ax.db"))
    try:
        return store.list_executions(limit=100)
    finally:
        store.close()


def top_execution_id(tmp_path: Path) -> str:
    def found() -> bool:
        return any(e.parent_execution_id is None for e in executions(tmp_path))

    wait_until(found)
    (top,) = [e for e in executions(tmp_path) if e.parent_execution_id is None]
    return top.id


# ---- results and linkage ----


def test_child_runs_with_its_context_and_its_results_are_the_steps_output(
    run_ax: RunAx, tmp_path: Path
) -> None:
    write(
        tmp_path / "sub" / "child.json",
        workflow(
            [step("echo", "ax:echo {{label}}"), step("count", "ax:output={{files}}")],
            name="child",
        ),
    )
    parent = write(
        tmp_path / "parent.json",
        workflow(
            [
                step("triage", 'ax:output={"files":["a.py","b.py"]}'),
                child_step(
                    "review",
                    "sub/child.json",
                    ["triage"],
                    **{"with": {"files": "{{triage.files}}", "label": "n={{triage.files}}"}},
                ),
                step("report", "got {{review.count}}", ["review"]),
            ],
            name="parent",
        ),
    )
    summary = json.loads(run_ax("workflow", "validate", str(parent), "--format", "json").stdout)
    assert summary["subworkflows"] == {"review": "sub/child.json"}
    assert (
        "sub-workflows: review -> sub/child.json"
        in run_ax("workflow", "validate", str(parent)).stdout
    )
    result = run_ax("workflow", "run", str(parent), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["parentExecutionId"] is None
    review = document["steps"]["review"]
    assert review["state"] == "completed" and review["attempts"] == 1
    child_id = review["childExecutionId"]

    child = status(run_ax, child_id)
    assert child["parentExecutionId"] == document["executionId"]
    assert child["workflowName"] == "child" and child["state"] == "completed"
    # the context is `with`, rendered: a lone placeholder keeps its value (a list), text
    # around one renders as a prompt does
    assert child["context"] == {"files": ["a.py", "b.py"], "label": 'n=["a.py","b.py"]'}
    assert child["stepResults"]["count"] == ["a.py", "b.py"]
    # the step's output is the child's stepResults, and dependents read into it
    assert document["stepResults"]["review"] == child["stepResults"]
    output = run_ax("workflow", "output", document["executionId"], "review", "--format", "json")
    assert json.loads(output.stdout) == child["stepResults"]

    runs = run_ax("workflow", "runs", "--format", "json")
    by_id = {r["executionId"]: r for r in json.loads(runs.stdout)}
    assert set(by_id) == {document["executionId"], child_id}
    assert by_id[child_id]["parentExecutionId"] == document["executionId"]
    assert by_id[child_id]["triggeredBy"] == "parent/review"
    table = run_ax("workflow", "runs").stdout
    child_row = next(line for line in table.splitlines() if line.startswith(child_id))
    assert document["executionId"][:8] in child_row and "Parent" in table

    events = json.loads(run_ax("workflow", "events", child_id, "--format", "json").stdout)
    assert events[0]["type"] == "workflow_started"
    parent_events = run_ax("workflow", "events", document["executionId"], "--format", "json")
    started = [
        e for e in json.loads(parent_events.stdout)
        if e["type"] == "step_started" and e["stepKey"] == "review"
    ]  # fmt: skip
    assert started[0]["data"]["childExecutionId"] == child_id


# ---- validation of the file tree ----


def test_a_cycle_of_files_is_refused_naming_the_files(run_ax: RunAx, tmp_path: Path) -> None:
    write(tmp_path / "a.json", workflow([child_step("to-b", "b.json")], name="a"))
    write(tmp_path / "b.json", workflow([step("x"), child_step("to-a", "a.json")], name="b"))
    for command in ("validate", "run"):
        result = run_ax("workflow", command, "a.json")
        result.assert_clean_error()
        assert "a.json -> b.json -> a.json" in result.stderr, result.stderr
        assert "steps[0].workflow" in result.stderr
    assert not executions(tmp_path)  # nothing ran


def test_a_childs_own_problems_are_reported_with_its_path(run_ax: RunAx, tmp_path: Path) -> None:
    write(
        tmp_path / "sub" / "child.json",
        workflow([step("one", "{{nowhere.result}}"), step("two", "x", ["missing"])], name="child"),
    )
    write(tmp_path / "parent.json", workflow([step("a"), child_step("c", "sub/child.json")]))
    result = run_ax("workflow", "validate", "parent.json", "--format", "json")
    assert result.returncode == 2
    errors = json.loads(result.stdout)["errors"]
    assert {e["path"] for e in errors} == {"steps[1].workflow"}
    messages = " | ".join(e["message"] for e in errors)
    assert "sub/child.json: steps[0].prompt" in messages
    assert "sub/child.json: steps[1].dependencies" in messages
    # an agent the child's file cannot run is its problem too, found before anything runs
    write(
        tmp_path / "sub" / "child.json",
        workflow([step("one", agent="no-such-agent")], name="child"),
    )
    run = run_ax("workflow", "run", "parent.json")
    run.assert_clean_error()
    assert "steps[1].workflow: sub/child.json: steps[0].agent" in run.stderr, run.stderr
    assert not executions(tmp_path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("[1, 2]", "expected a map with 'name' and 'steps'"),
        ("name: x\n", "steps"),
    ],
)
def test_a_missing_or_non_workflow_file(
    run_ax: RunAx, tmp_path: Path, content: str | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / "other.yaml").write_text(content, encoding="utf-8")
    write(tmp_path / "parent.json", workflow([step("a"), child_step("c", "other.yaml", ["a"])]))
    for command in ("validate", "run"):
        result = run_ax("workflow", command, "parent.json")
        result.assert_clean_error()
        assert "parent.json: steps[1].workflow: other.yaml" in result.stderr, result.stderr
        assert problem in result.stderr


def test_with_and_approval_templates_are_checked_like_prompts(
    run_ax: RunAx, tmp_path: Path
) -> None:
    write(tmp_path / "child.json", workflow([step("one", "{{topic}} {{extra}}")], name="child"))
    data = workflow(
        [
            step("a"),
            child_step(
                "c",
                "child.json",
                **{"with": {"topic": "{{a}}", "extra": {"deep": ["{{b}}", 3]}}},
            ),
            step("b", "x", ["a"]),
            child_step("d", "child.json", ["a"], **{"with": {"topic": "{{a}}"}}),
            {"key": "gate", "approval": {"message": "ok {{nope.result}}?"}},
            {"key": "typo", "approval": {"message": "m", "timeoutMS": 5}},
            child_step("retried", "child.json", retryPolicy={"maxRetries": 2}, timeoutMs=9,
                       **{"with": {"topic": "t", "extra": "e"}}),
        ]
    )  # fmt: skip
    write(tmp_path / "parent.json", data)
    result = run_ax("workflow", "validate", "parent.json", "--format", "json")
    assert result.returncode == 2
    errors = {(e["path"], e["message"]) for e in json.loads(result.stdout)["errors"]}
    paths = {path for path, _ in errors}
    # a step placeholder in `with` must name an upstream step, at any depth
    assert any(p == "steps[1].with.topic" and "not upstream" in m for p, m in errors)
    assert any(p == "steps[1].with.extra.deep[0]" and "'b'" in m for p, m in errors)
    assert any(p == "steps[4].approval.message" and "unknown step" in m for p, m in errors)
    assert any(p == "steps[5].approval.timeoutMS" and "timeoutMs" in m for p, m in errors)
    assert {"steps[6].retryPolicy", "steps[6].timeoutMs"} <= paths
    # once the file itself is sound: a `with` lacking what the child's templates need
    write(tmp_path / "parent.json", workflow([step("a"), data["steps"][3]]))
    result = run_ax("workflow", "validate", "parent.json")
    result.assert_clean_error()
    assert "steps[1].with: child.json needs {{extra}}" in result.stderr, result.stderr


def test_with_that_fails_to_render_at_run_time_fails_the_step(
    run_ax: RunAx, tmp_path: Path
) -> None:
    write(tmp_path / "child.json", workflow([step("one", "{{v}}")], name="child"))
    write(
        tmp_path / "parent.json",
        workflow(
            [
                step("a", 'ax:output={"x":1}'),
                child_step("c", "child.json", ["a"], **{"with": {"v": "{{a.missing}}"}}),
            ]
        ),
    )
    result = run_ax("workflow", "run", "parent.json", "--format", "json")
    assert result.returncode == 1, result.stderr
    step_entry = json.loads(result.stdout)["steps"]["c"]
    assert step_entry["state"] == "failed" and step_entry["errorKind"] == "template_error"
    assert "childExecutionId" not in step_entry
    assert len(executions(tmp_path)) == 1  # no child was created


# ---- failures and nesting ----


def test_a_failed_child_fails_the_step_with_subworkflow_failed(
    run_ax: RunAx, tmp_path: Path
) -> None:
    write(tmp_path / "child.json", workflow([step("bad", "ax:fail-always")], name="child"))
    write(
        tmp_path / "parent.json", workflow([child_step("c", "child.json"), step("z", deps=["c"])])
    )
    result = run_ax("workflow", "run", "parent.json", "--format", "json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    entry = document["steps"]["c"]
    assert entry["state"] == "failed" and entry["errorKind"] == "subworkflow_failed"
    assert entry["attempts"] == 1  # a sub-workflow step is not retried
    child = status(run_ax, entry["childExecutionId"])
    assert child["state"] == "failed" and child["steps"]["bad"]["state"] == "failed"
    assert entry["childExecutionId"] in entry["error"] and "planned failure" in entry["error"]
    assert document["steps"]["z"]["state"] != "completed"


def test_nesting_deeper_than_eight_fails_the_step(run_ax: RunAx, tmp_path: Path) -> None:
    for level in range(10):  # level0 runs level1 ... runs level9: nine levels deep
        steps = [step("work")]
        if level < 9:
            steps.append(child_step("down", f"level{level + 1}.json", ["work"]))
        write(tmp_path / f"level{level}.json", workflow(steps, name=f"level{level}"))
    assert run_ax("workflow", "validate", "level0.json").returncode == 0
    result = run_ax("workflow", "run", "level0.json", "--format", "json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["steps"]["down"]["errorKind"] == "subworkflow_failed"
    found = executions(tmp_path)
    assert len(found) == 9  # the top and eight levels of children; the ninth never started
    deepest = next(e for e in found if e.workflow_name == "level8")
    assert deepest.state == "failed"
    store = open_store(str(tmp_path / "ax.db"))
    try:
        down = {r.key: r for r in store.list_instances(deepest.id)}["down"]
    finally:
        store.close()
    assert down.error_kind == "subworkflow_failed" and "deeper than the limit of 8" in (
        down.error_message or ""
    )


def test_for_each_over_a_sub_workflow_runs_one_child_per_item(
    run_ax: RunAx, tmp_path: Path
) -> None:
    write(tmp_path / "child.json", workflow([step("echo", "ax:echo {{file}}#{{n}}")], name="c"))
    data = workflow(
        [
            step("list", 'ax:output={"files":["a","b","c"]}'),
            child_step(
                "each",
                "child.json",
                ["list"],
                forEach={"items": "steps.list.output.files", "as": "f"},
                **{"with": {"file": "{{f}}", "n": "{{index}}"}},
            ),
        ]
    )
    write(tmp_path / "parent.json", data)
    result = run_ax("workflow", "run", "parent.json", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["steps"]["each"]["items"] == 3
    assert document["stepResults"]["each"] == [
        {"echo": "ax:echo a#0"},
        {"echo": "ax:echo b#1"},
        {"echo": "ax:echo c#2"},
    ]
    children = {document["steps"][f"each[{i}]"]["childExecutionId"] for i in range(3)}
    assert len(children) == 3
    assert {e.id for e in executions(tmp_path) if e.parent_execution_id} == children


# ---- cancel, pause, crashes ----


def held_child(tmp_path: Path, gate: Path, announce: Path) -> Path:
    """parent: before -> child (slow, waiting for `gate`, -> tail) -> after."""
    write(
        tmp_path / "child.json",
        workflow(
            [
                step("slow", f"ax:announce={announce} ax:wait-file={gate}"),
                step("tail", deps=["slow"]),
            ],
            name="child",
        ),
    )
    return write(
        tmp_path / "parent.json",
        workflow(
            [step("before"), child_step("c", "child.json", ["before"]), step("after", deps=["c"])],
            name="parent",
        ),
    )


def run_held_parent(
    tmp_path: Path, ax_env: dict[str, str], *flags: str
) -> tuple[subprocess.Popen[str], Path]:
    """`held_child`'s parent running, its child's `slow` step started and held: the runner
    and the gate that lets `slow` finish."""
    gate, announce = tmp_path / "gate", tmp_path / "announced"
    held_child(tmp_path, gate, announce)
    runner = start_ax(["workflow", "run", "parent.json", *flags], env=ax_env, cwd=tmp_path)
    wait_until(announce.exists)
    return runner, gate


def test_cancel_of_the_parent_cancels_the_child_and_kills_its_agent(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    runner, _ = run_held_parent(tmp_path, ax_env)
    parent_id = top_execution_id(tmp_path)
    assert run_ax("workflow", "cancel", parent_id).returncode == 0
    code, _, err = finish(runner)
    assert code == 3, err
    (slow,) = by_step(agent_runs(ledger))["slow"]
    assert_dead(slow.pid)
    assert slow.end is None  # killed, not finished
    parent = status(run_ax, parent_id)
    child = status(run_ax, parent["steps"]["c"]["childExecutionId"])
    assert parent["state"] == "cancelled" and child["state"] == "cancelled"
    assert child["steps"]["slow"]["state"] == "cancelled"
    assert parent_id in (child["error"] or "")


def test_pause_of_the_parent_pauses_the_child_and_resume_continues_both(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    runner, gate = run_held_parent(tmp_path, ax_env)
    parent_id = top_execution_id(tmp_path)
    assert run_ax("workflow", "pause", parent_id).returncode == 0
    gate.touch()  # the running step finishes and keeps its result
    code, _, err = finish(runner)
    assert code == 4, err
    parent = status(run_ax, parent_id)
    child_id = parent["steps"]["c"]["childExecutionId"]
    child = status(run_ax, child_id)
    assert parent["state"] == "paused" and child["state"] == "paused"
    assert child["steps"]["slow"]["state"] == "completed"
    assert child["steps"]["tail"]["state"] == "pending"
    # the child is steered through its parent
    refused = run_ax("workflow", "resume", child_id)
    refused.assert_clean_error()
    assert parent_id in refused.stderr

    resumed = run_ax("workflow", "resume", parent_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["state"] == "completed"
    assert document["steps"]["c"]["childExecutionId"] == child_id
    assert document["steps"]["c"]["attempts"] == 1
    assert status(run_ax, child_id)["state"] == "completed"
    assert len(executions(tmp_path)) == 2  # the same child, resumed
    runs = by_step(agent_runs(ledger))
    assert {key: len(v) for key, v in runs.items()} == {
        "before": 1,
        "slow": 1,
        "tail": 1,
        "after": 1,
    }


@pytest.mark.parametrize("how", ["resume", "recover"])
def test_kill_9_while_the_child_runs_then_one_child_completes(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path, how: str
) -> None:
    gate, announce = tmp_path / "gate", tmp_path / "announced"
    held_child(tmp_path, gate, announce)
    kill_runner_when(
        ax_env, tmp_path, ["workflow", "run", "parent.json"],
        lambda runs: any(r.step == "slow" for r in runs), 0.05,
    )  # fmt: skip
    (killed,) = by_step(agent_runs(ledger))["slow"]
    parent_id = top_execution_id(tmp_path)
    assert len(executions(tmp_path)) == 2
    gate.touch()  # the orphaned agent ends; its step runs again on recovery
    assert_dead(killed.pid)
    if how == "resume":
        result = run_ax("workflow", "resume", parent_id, "--format", "json")
    else:
        result = run_ax("workflow", "recover", "--format", "json")
    assert result.returncode == 0, result.stderr
    found = executions(tmp_path)
    assert len(found) == 2  # exactly one child: recovery attached to it
    assert all(e.state == "completed" for e in found)
    parent = status(run_ax, parent_id)
    assert parent["state"] == "completed"
    child = status(run_ax, parent["steps"]["c"]["childExecutionId"])
    assert child["parentExecutionId"] == parent_id and child["resumeCount"] == 1
    assert parent["stepResults"]["c"] == child["stepResults"]
    runs = by_step(agent_runs(ledger))
    assert len(runs["slow"]) == 2  # it was running when the runner died: it runs again
    assert {key: len(v) for key, v in runs.items() if key != "slow"} == {
        "before": 1,
        "tail": 1,
        "after": 1,
    }


def test_a_child_cancelled_on_its_own_fails_the_parents_step(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    runner, _ = run_held_parent(tmp_path, ax_env, "--format", "json")
    (child,) = [e for e in executions(tmp_path) if e.parent_execution_id]
    assert run_ax("workflow", "cancel", child.id).returncode == 0
    code, out, err = finish(runner)
    assert code == 1, err
    entry = json.loads(out)["steps"]["c"]
    assert entry["errorKind"] == "subworkflow_failed" and "was cancelled" in entry["error"]


# ---- PostgreSQL ----


@pytest.mark.postgres
def test_parent_and_child_over_postgres(
    run_ax: RunAx, pg_url: str, tmp_path: Path, ledger: Path
) -> None:
    write(tmp_path / "child.json", workflow([step("inner", "ax:echo {{x}}")], name="child"))
    write(
        tmp_path / "parent.json",
        workflow([step("a"), child_step("c", "child.json", ["a"], **{"with": {"x": "{{a}}"}})]),
    )
    result = run_ax("workflow", "run", "parent.json", "--format", "json", env={"AX_DB": pg_url})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    store: Store = open_store(pg_url)
    try:
        child_id = document["steps"]["c"]["childExecutionId"]
        child = store.get_execution(child_id)
        assert child.parent_execution_id == document["executionId"]
        assert child.state == "completed"
        assert store.execution_definition(child_id)["steps"][0]["key"] == "inner"
        stored = store.execution_subworkflows(document["executionId"])
        assert stored["child.json"]["definition"]["name"] == "child"
        assert document["stepResults"]["c"] == {"inner": 'ax:echo {"step":"a","attempt":1}'}
    finally:
        store.close()


def test_sub_workflow_agents_come_from_its_own_file(run_ax: RunAx, tmp_path: Path) -> None:
    """A child's inline agents are its file's; the parent's do not leak into it."""
    write(
        tmp_path / "child.json",
        {
            "name": "child",
            "agents": {"own": command_agent()},
            "steps": [{"key": "s", "agent": "own", "prompt": "ax:echo hi"}],
        },
    )
    write(tmp_path / "parent.json", workflow([child_step("c", "child.json")]))
    result = run_ax("workflow", "run", "parent.json", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stepResults"]["c"] == {"s": "ax:echo hi"}
    assert len(executions(tmp_path)) == 2


def test_pausing_the_child_pauses_its_parent_and_cancel_reaches_a_paused_child(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    runner, gate = run_held_parent(tmp_path, ax_env)
    (child,) = [e for e in executions(tmp_path) if e.parent_execution_id]
    assert run_ax("workflow", "pause", child.id).returncode == 0
    gate.touch()
    code, _, err = finish(runner)
    assert code == 4, err  # the step cannot go on without its child: the parent pauses
    parent_id = child.parent_execution_id
    assert parent_id is not None
    assert status(run_ax, parent_id)["state"] == "paused"
    assert status(run_ax, child.id)["state"] == "paused"
    # no runner is alive: the cancel of the parent is done by the command, child included
    assert run_ax("workflow", "cancel", parent_id).returncode == 0
    assert status(run_ax, parent_id)["state"] == "cancelled"
    assert status(run_ax, child.id)["state"] == "cancelled"


def test_a_child_that_pauses_pauses_its_running_siblings_through_the_parent(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    """Not only a `pause` command: whatever pauses the parent (here one child pausing on
    its own) pauses its other running children before the parent is paused."""
    for name in ("one", "two"):
        write(
            tmp_path / f"{name}.json",
            workflow(
                [
                    step(
                        "slow",
                        f"ax:announce={tmp_path / name}.up ax:wait-file={tmp_path / name}.go",
                    ),
                    step("tail", deps=["slow"]),
                ],
                name=name,
            ),
        )
    write(
        tmp_path / "parent.json",
        workflow([child_step("c1", "one.json"), child_step("c2", "two.json")], name="parent"),
    )
    runner = start_ax(["workflow", "run", "parent.json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: (tmp_path / "one.up").exists() and (tmp_path / "two.up").exists())
    parent_id = top_execution_id(tmp_path)
    children = status(run_ax, parent_id)["steps"]
    one, two = children["c1"]["childExecutionId"], children["c2"]["childExecutionId"]
    assert run_ax("workflow", "pause", one).returncode == 0
    (tmp_path / "one.go").touch()
    # `one` paused, so its step went back to pending: the parent is pausing, `two` too
    wait_until(lambda: status(run_ax, parent_id)["steps"]["c1"]["state"] == "pending")
    (tmp_path / "two.go").touch()
    code, _, err = finish(runner)
    assert code == 4, err
    assert status(run_ax, parent_id)["state"] == "paused"
    second = status(run_ax, two)
    assert second["state"] == "paused"
    assert (second["steps"]["slow"]["state"], second["steps"]["tail"]["state"]) == (
        "completed",
        "pending",
    )


def test_the_step_starts_and_its_child_is_created_in_one_write(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery can rely on it: a step naming a child whose row does not exist (or a child
    whose step was never started) cannot be committed."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "child.json", workflow([step("inner")], name="child"))
    path = write(tmp_path / "parent.json", workflow([child_step("c", "child.json")]))
    definition = load_workflow(path)
    prepared = prepare_workflow(
        definition, workdir=tmp_path, subworkflows=load_subworkflows(definition, path)
    )
    writes: list[list[WriteOp]] = []
    runner = start_execution(
        store, prepared, context={}, on_commit=lambda ops: writes.append(list(ops))
    )
    assert asyncio.run(runner.run()).state == "completed"
    (write_,) = [ops for ops in writes if any(isinstance(op, CreateChildExecution) for op in ops)]
    (create,) = [op for op in write_ if isinstance(op, CreateChildExecution)]
    started = [op.instance for op in write_ if isinstance(op, PutInstance)]
    assert [(r.key, r.state, r.child_execution_id) for r in started] == [
        ("c", "running", create.execution_id)
    ]
    assert store.get_execution(create.execution_id).parent_execution_id == runner.execution_id


def test_a_runner_lost_right_after_creating_the_child_leaves_one_child_to_attach_to(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner stops in the very write that starts the step (the child exists, idle,
    never run): the resume attaches to that child and runs it; no second child appears."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "child.json", workflow([step("inner")], name="child"))
    flow = workflow([child_step("c", "child.json"), step("z", deps=["c"])])
    path = write(tmp_path / "parent.json", flow)
    definition = load_workflow(path)
    prepared = prepare_workflow(
        definition, workdir=tmp_path, subworkflows=load_subworkflows(definition, path)
    )

    def crash_after_the_child_is_created(ops: Any) -> None:
        if any(isinstance(op, CreateChildExecution) for op in ops):
            raise KeyboardInterrupt  # the process stops right after that commit

    runner = start_execution(
        store, prepared, context={}, on_commit=crash_after_the_child_is_created
    )
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(runner.run())
    (child,) = [e for e in store.list_executions() if e.parent_execution_id]
    assert child.state == "idle" and child.lease_expires_at is not None
    wait_until(lambda: time.time() > (child.lease_expires_at or 0) + 0.01, timeout=10)

    resumed = resume_execution(store, runner.execution_id)
    assert asyncio.run(resumed.run()).state == "completed"
    found = store.list_executions()
    assert len(found) == 2 and {e.state for e in found} == {"completed"}
    assert store.get_execution(child.id).resume_count == 1
    instances = {r.key: r for r in store.list_instances(runner.execution_id)}
    assert instances["c"].child_execution_id == child.id and instances["c"].attempt == 1


def test_an_approval_gate_inside_a_child_is_pending_and_decided_on_the_child(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    write(
        tmp_path / "child.json",
        workflow(
            [
                {"key": "ok", "approval": {"message": "Ship {{what}}?"}},
                step("ship", "ax:echo shipped {{what}}", ["ok"]),
            ],
            name="child",
        ),
    )
    write(
        tmp_path / "parent.json",
        workflow([child_step("release", "child.json", **{"with": {"what": "v2"}})]),
    )
    runner = start_ax(
        ["workflow", "run", "parent.json", "--format", "json"], env=ax_env, cwd=tmp_path
    )
    waiting: list[dict[str, Any]] = []

    def gate_listed() -> bool:
        waiting[:] = json.loads(run_ax("workflow", "pending", "--format", "json").stdout)
        return bool(waiting)

    wait_until(gate_listed)
    (gate,) = waiting
    parent_id = top_execution_id(tmp_path)
    assert (gate["workflowName"], gate["stepKey"], gate["message"]) == ("child", "ok", "Ship v2?")
    assert gate["executionId"] != parent_id  # the gate is the child's
    assert status(run_ax, gate["executionId"])["parentExecutionId"] == parent_id
    assert run_ax("workflow", "approve", parent_id, "ok").returncode == 2  # not the parent's
    approved = run_ax("workflow", "approve", gate["executionId"], "ok", env={"AX_USER": "dana"})
    assert approved.returncode == 0, approved.stderr
    code, out, err = finish(runner)
    assert code == 0, err
    release = json.loads(out)["stepResults"]["release"]
    assert release["ok"]["by"] == "dana"
    assert release["ship"] == "ax:echo shipped v2"  # the echoed prompt: the child's context
