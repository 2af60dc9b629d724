"""`forEach` (SPEC section 8) through the real CLI, with real subprocess agents: one durable
instance per item, outputs in index order whatever the durations, `maxParallel` judged from
the agents' own timestamps, an empty list, item failures under the usual rules, bad items,
the readers' shapes, a kill -9 in the middle of a fan-out, and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    by_step,
    command_agent,
    kill_runner_when,
    only_execution_id,
    pause_and_release,
    peak_concurrency,
    run_in_process,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def files_flow(
    files: list[Any], *, prompt: str, max_parallel: int = 2, **config: Any
) -> dict[str, Any]:
    triage = "ax:output=" + json.dumps({"files": files}, separators=(",", ":"))
    return workflow(
        [
            step("triage", triage),
            step(
                "review", prompt, ["triage"],
                forEach={
                    "items": "steps.triage.output.files", "as": "file", "maxParallel": max_parallel
                },
            ),
            step("report", "ax:echo {{review}}", ["review"]),
        ],
        config={"parallelism": 4, **config},
    )  # fmt: skip


def run_json(run_ax: RunAx, tmp_path: Path, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_each_item_runs_once_and_outputs_keep_the_index_order(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    # the first items take longest, so they end last
    files = [{"path": f"f{i}.py", "s": round(0.4 - 0.08 * i, 2)} for i in range(5)]
    data = files_flow(
        files, prompt="ax:sleep={{file.s}} ax:echo {{file.path}}#{{index}}", max_parallel=2
    )
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 0, document
    expected = [f"ax:sleep={f['s']} ax:echo {f['path']}#{i}" for i, f in enumerate(files)]
    assert document["stepResults"]["review"] == expected  # by index, not by finish time
    assert "review[0]" not in document["stepResults"]
    steps = document["steps"]
    assert list(steps) == ["triage", "review", *(f"review[{i}]" for i in range(5)), "report"]
    assert (steps["review"]["state"], steps["review"]["items"]) == ("completed", 5)
    assert all(steps[f"review[{i}]"]["attempts"] == 1 for i in range(5))
    items = by_step(agent_runs(ledger))
    assert sorted(items) == sorted(["triage", "report", *(f"review[{i}]" for i in range(5))])
    assert (
        peak_concurrency([r for k, rs in items.items() if k.startswith("review[") for r in rs]) == 2
    )
    ends = {k: rs[0].end for k, rs in items.items()}
    assert ends["review[1]"] < ends["review[0]"]  # uneven durations really happened
    assert document["stepResults"]["report"] == "ax:echo " + json.dumps(
        expected, separators=(",", ":")
    )


def test_an_empty_list_completes_the_step_with_an_empty_output(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    code, document = run_json(run_ax, tmp_path, files_flow([], prompt="ax:echo {{file}}"))
    assert code == 0
    assert document["stepResults"]["review"] == []
    assert document["steps"]["review"]["items"] == 0
    assert document["stepResults"]["report"] == "ax:echo []"
    assert sorted(by_step(agent_runs(ledger))) == ["report", "triage"]


def test_a_failed_item_fails_the_step_and_cancels_the_items_not_started(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    files = [
        {"path": "ok.py", "bad": ""},
        {"path": "bad.py", "bad": "ax:fail-always"},
        *({"path": f"later{i}.py", "bad": ""} for i in range(3)),
    ]
    data = files_flow(
        files, prompt="{{file.bad}} ax:echo {{file.path}}", max_parallel=1, continueOnError=True
    )
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 1
    steps = document["steps"]
    assert (steps["review"]["state"], steps["review"]["errorKind"]) == ("failed", "provider_error")
    assert "item 1 (review[1]) failed" in steps["review"]["error"]
    assert steps["review[0]"]["state"] == "completed"
    assert steps["review[1]"]["state"] == "failed"
    assert [steps[f"review[{i}]"]["state"] for i in (2, 3, 4)] == ["cancelled"] * 3
    assert steps["report"]["state"] == "skipped"  # downstream of a failed step
    assert not any(k.startswith("review[2") for k in by_step(agent_runs(ledger)))


def test_an_optional_forEach_whose_item_fails_lets_its_dependents_run(
    run_ax: RunAx, tmp_path: Path
) -> None:
    data = files_flow([{"bad": "ax:fail-always"}], prompt="{{file.bad}}")
    data["steps"][1]["optional"] = True
    data["steps"][2]["prompt"] = "ax:echo [{{review}}]"
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 0
    assert document["steps"]["review"]["state"] == "failed"
    assert document["stepResults"]["report"] == "ax:echo []"


def test_items_retry_on_their_own(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = files_flow([{"p": "ax:fail-attempts=1"}, {"p": ""}], prompt="{{file.p}} x")
    data["steps"][1]["retryPolicy"] = {"maxRetries": 1, "retryDelayMs": 10}
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 0
    assert (
        document["steps"]["review[0]"]["attempts"],
        document["steps"]["review[1]"]["attempts"],
    ) == (2, 1)
    assert [r.attempt for r in by_step(agent_runs(ledger))["review[0]"]] == [1, 2]


def test_exactly_max_for_each_items_runs(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = files_flow([1, 2, 3], prompt="x {{file}}", maxForEachItems=3)
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 0, document
    assert document["steps"]["review"]["items"] == 3
    assert len(by_step(agent_runs(ledger))) == 5


@pytest.mark.parametrize(
    ("items", "config", "message"),
    [
        ("steps.triage.output.files[0]", {}, "gave dict, not a list"),
        ("steps.triage.output.nope", {}, "nope"),
        (
            "steps.triage.output.files",
            {"maxForEachItems": 2},
            "3 items, more than config.maxForEachItems (2)",
        ),
    ],
)
def test_items_that_are_not_a_list_or_too_many_fail_with_expression_error(
    run_ax: RunAx, tmp_path: Path, ledger: Path, items: str, config: dict[str, Any], message: str
) -> None:
    data = files_flow([{"a": 1}, {"a": 2}, {"a": 3}], prompt="x", **config)
    data["steps"][1]["forEach"]["items"] = items
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 1
    entry = document["steps"]["review"]
    assert (entry["state"], entry["errorKind"]) == ("failed", "expression_error")
    assert message in entry["error"]
    assert sorted(by_step(agent_runs(ledger))) == ["triage"]


def test_readers_show_each_instance(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    _, document = run_json(
        run_ax, tmp_path, files_flow([{"n": 1}, {"n": 2}], prompt="x {{file.n}}")
    )
    execution_id = document["executionId"]
    events = json.loads(run_ax("workflow", "events", execution_id, "--format", "json").stdout)
    started = [e for e in events if e["type"] == "step_started"]
    assert [e["stepKey"] for e in started] == [
        "triage",
        "review",
        "review[0]",
        "review[1]",
        "report",
    ]
    assert started[1]["data"]["items"] == 2
    table = run_ax("workflow", "status", execution_id).stdout
    assert "review[1]" in table and "5/5 completed" in table
    starts = [line for line in ledger.read_text().splitlines() if '"start"' in line]
    assert any(
        '"step": "review[1]"' in line and '"key": "' + execution_id + ':review[1]"' in line
        for line in starts
    )


def test_kill_9_in_the_middle_of_a_fan_out_then_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """Completed items never run again; only the unfinished ones do, and the list is the
    one stored when the step fanned out."""
    files = [{"i": i} for i in range(8)]
    data = files_flow(files, prompt="ax:sleep=0.2 ax:echo x{{file.i}}", max_parallel=3)
    path = write_workflow(tmp_path, data)
    done = lambda runs: sum(1 for r in runs if r.step.startswith("review[") and r.end) >= 3  # noqa: E731
    kill_runner_when(ax_env, tmp_path, ["workflow", "run", str(path)], done, 0.05)
    execution_id = only_execution_id(tmp_path)
    before = {r.step for r in agent_runs(ledger) if r.end}
    for run in agent_runs(ledger):
        assert_dead(run.pid)
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["stepResults"]["review"] == [f"ax:sleep=0.2 ax:echo x{i}" for i in range(8)]
    runs = by_step(agent_runs(ledger))
    for key in before:
        assert len(runs[key]) == 1, key  # a completed item never ran again
    assert all(len(runs[f"review[{i}]"]) >= 1 for i in range(8))
    assert len(runs["triage"]) == 1


def test_pause_in_a_fan_out_and_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    data = files_flow(
        [{"i": i} for i in range(4)], prompt=f"ax:wait-file={gate} x{{{{file.i}}}}", max_parallel=2
    )
    runner = start_ax(
        ["workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json"],
        env=ax_env,
        cwd=tmp_path,
    )
    wait_until(lambda: sum(1 for r in agent_runs(ledger) if r.step.startswith("review[")) == 2)
    execution_id, paused = pause_and_release(run_ax, runner, tmp_path, gate)
    steps = paused["steps"]
    assert [steps[f"review[{i}]"]["state"] for i in range(4)] == [
        "completed",
        "completed",
        "pending",
        "pending",
    ]
    assert steps["review"]["state"] == "running"
    checkpoints = json.loads(
        run_ax("workflow", "checkpoints", execution_id, "--format", "json").stdout
    )
    assert (
        "review[0]" in checkpoints[0]["completedSteps"]
        and "review[3]" in checkpoints[0]["pendingSteps"]
    )
    resumed = json.loads(run_ax("workflow", "resume", execution_id, "--format", "json").stdout)
    assert resumed["state"] == "completed"
    runs = by_step(agent_runs(ledger))
    assert all(len(runs[f"review[{i}]"]) == 1 for i in range(4))


def test_a_dynamic_agent_per_item(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = files_flow([{"who": "security"}, {"who": "quality"}], prompt="x")
    data["steps"][1]["agent"] = "{{file.who}}"
    data["steps"][1]["agentChoices"] = ["security", "quality"]
    data["agents"].update(security=command_agent(), quality=command_agent())
    code, document = run_json(run_ax, tmp_path, data)
    assert code == 0, document
    assert [document["steps"][f"review[{i}]"]["agent"] for i in (0, 1)] == ["security", "quality"]


def test_validate_refuses_what_forEach_cannot_be(run_ax: RunAx, tmp_path: Path) -> None:
    data = workflow(
        [
            step("triage", "x"),
            step(
                "solo", "x", ["triage"], parallel=False, forEach={"items": "steps.triage.output.f"}
            ),
            step(
                "nested",
                "x",
                ["triage"],
                forEach={"items": "steps.triage.output.f", "forEach": {"items": "[]"}},
            ),
            step(
                "named", "x", ["triage"], forEach={"items": "steps.triage.output.f", "as": "triage"}
            ),
            step("far", "x", forEach={"items": "steps.triage.output.f"}),
            step("index", "x", ["triage"], forEach={"items": "[1]", "as": "index"}),
        ]
    )
    result = run_ax("workflow", "validate", str(write_workflow(tmp_path, data)))
    result.assert_clean_error(2)
    text = result.stderr
    assert "steps[1].parallel: a forEach step runs its items side by side" in text
    assert "steps[2].forEach.forEach: a forEach cannot be nested: run a sub-workflow" in text
    assert "steps[3].forEach.as: 'triage' is also a step key" in text
    assert "steps[4].forEach.items: steps.triage: step 'triage' is not upstream" in text
    assert "steps[5].forEach.as: 'index' is always the item's index" in text


@pytest.mark.postgres
def test_a_fan_out_over_postgres(
    pg_url: str, tmp_path: Path, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AX_TEST_LEDGER", str(ledger))
    store = open_store(pg_url)
    try:
        data = files_flow(
            [{"i": i} for i in range(5)], prompt="ax:echo x{{file.i}}", max_parallel=2
        )
        run = run_in_process(store, data, {}, workdir=tmp_path)
        assert run.outcome.state == "completed"
        latest = run.latest()
        assert latest["review"].output == [f"ax:echo x{i}" for i in range(5)]
        assert latest["review"].items == [{"i": i} for i in range(5)]
        assert [latest[f"review[{i}]"].item_index for i in range(5)] == list(range(5))
    finally:
        store.close()
