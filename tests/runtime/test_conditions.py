"""`if:` conditions (SPEC section 8) through the real CLI: false skips with reason
condition_false and the join after an if/else still runs; conditions over context and over
upstream outputs; a non-bool or failing expression fails the step with expression_error;
validate reports every expression problem at its path; a resume never re-evaluates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    pause_and_release,
    start_ax,
    step,
    unannounced,
    wait_until,
    workflow,
    write_workflow,
)


def triage_flow(risk: str) -> dict[str, object]:
    return workflow(
        [
            step("triage", f'ax:output={{"risk":"{risk}","files":["a.py","b.py"]}}'),
            step("deep", "x", ["triage"], **{"if": 'steps.triage.output.risk != "low"'}),
            step("quick", "x", ["triage"], **{"if": 'steps.triage.output.risk == "low"'}),
            step("report", "ax:echo deep=[{{deep}}] quick=[{{quick.step}}]", ["deep", "quick"]),
        ]
    )


@pytest.mark.parametrize(
    ("risk", "ran", "skipped"), [("low", "quick", "deep"), ("high", "deep", "quick")]
)
def test_a_false_condition_skips_and_the_join_after_the_branches_runs(
    run_ax: RunAx, tmp_path: Path, ledger: Path, risk: str, ran: str, skipped: str
) -> None:
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, triage_flow(risk))), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    steps = document["steps"]
    assert (steps[ran]["state"], steps[skipped]["state"]) == ("completed", "skipped")
    assert steps[skipped]["attempts"] == 0
    assert steps["report"]["state"] == "completed"
    assert [r.step for r in agent_runs(ledger)] == ["triage", ran, "report"]
    report = document["stepResults"]["report"]
    assert report.startswith("ax:echo deep=[") and (
        "deep=[]" in report if skipped == "deep" else "quick=[]" in report
    )  # a skipped step's placeholders render empty
    events = json.loads(
        run_ax("workflow", "events", document["executionId"], "--format", "json").stdout
    )
    (event,) = [e for e in events if e["type"] == "step_skipped"]
    assert (event["stepKey"], event["data"]) == (skipped, {"reason": "condition_false"})


def test_a_condition_over_the_context(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = workflow(
        [
            step("always", "x"),
            step("full-only", "x", **{"if": 'context.mode == "full" && size(context.files) > 1'}),
        ]
    )
    path = str(write_workflow(tmp_path, data))

    def state_with(context: str) -> str:
        result = run_ax("workflow", "run", path, "--format", "json", "--context", context)
        return str(json.loads(result.stdout)["steps"]["full-only"]["state"])

    assert state_with('{"mode": "quick", "files": []}') == "skipped"
    assert state_with('{"mode": "full", "files": [1, 2]}') == "completed"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("steps.triage.output.risk", "gave str 'high', not a bool"),
        ("steps.triage.output.missing == 1", "missing"),
        ("int(steps.triage.output.risk) > 1", "steps.triage.output.risk"),
    ],
)
def test_a_non_bool_or_failing_condition_fails_the_step_with_expression_error(
    run_ax: RunAx, tmp_path: Path, ledger: Path, condition: str, message: str
) -> None:
    data = workflow(
        [
            step("triage", 'ax:output={"risk":"high"}'),
            step("deep", "x", ["triage"], **{"if": condition}),
            step("after", "x", ["deep"]),
        ],
        config={"continueOnError": True},
    )
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json")
    assert result.returncode == 1, result.stderr
    assert unannounced(result.stderr) == []  # no warning, no traceback: only the ID
    steps = json.loads(result.stdout)["steps"]
    assert (steps["deep"]["state"], steps["deep"]["errorKind"]) == ("failed", "expression_error")
    assert steps["deep"]["attempts"] == 0 and message in steps["deep"]["error"]
    assert steps["after"]["state"] == "skipped"  # a failed step's dependents are skipped
    assert [r.step for r in agent_runs(ledger)] == ["triage"]


def test_an_optional_step_whose_condition_fails_lets_its_dependents_run(
    run_ax: RunAx, tmp_path: Path
) -> None:
    data = workflow(
        [
            step("maybe", "x", optional=True, **{"if": "context.nope"}),
            step("after", "[{{maybe}}]", ["maybe"]),
        ]
    )
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert (steps["maybe"]["errorKind"], steps["after"]["state"]) == (
        "expression_error",
        "completed",
    )


def test_validate_reports_every_expression_problem_at_its_path(
    run_ax: RunAx, tmp_path: Path
) -> None:
    data = workflow(
        [
            step("a", "x"),
            step("b", "x", ["a"], **{"if": "steps.a.output.x &&"}),
            step("c", "x", ["a"], **{"if": "shout(steps.a.output)"}),
            step("d", "x", **{"if": "steps.a.state == 'completed'"}),
            step("e", "x", ["a"], **{"if": "whatever > 1"}),
            step("f", "x", ["a"], **{"if": 'steps["a"].output.all(x, x.all(y, y.all(z, z)))'}),
            step("g", "x", ["a"], **{"if": "true || " * 400 + "true"}),
        ]
    )
    result = run_ax("workflow", "validate", str(write_workflow(tmp_path, data)))
    result.assert_clean_error(2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    text = "\n".join(errors)
    assert "steps[1].if: not a valid CEL expression" in text
    assert "steps[2].if: unknown function 'shout'" in text
    assert "steps[3].if: steps.a: step 'a' is not upstream" in text
    assert "steps[4].if: unknown name 'whatever'" in text
    assert "steps[5].if: comprehensions nest more than 2 deep" in text
    assert "steps[6].if: longer than 2000 characters" in text
    assert len(errors) == 6
    as_json = run_ax(
        "workflow", "validate", str(write_workflow(tmp_path, data)), "--format", "json"
    )
    paths = sorted(e["path"] for e in json.loads(as_json.stdout)["errors"])
    assert paths == [f"steps[{i}].if" for i in range(1, 7)]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("(" * 49 + "context.x" + ")" * 49 + " == 1", "nested too deeply (about 48 levels"),
        ("(" * 600 + "true" + ")" * 600, "nested too deeply (about 48 levels"),
        ("!" * 300 + "true", "nested too deeply to compile"),
        ("-" * 1500 + "1 > 0", "nested too deeply (about 48 levels"),
        ("[" + "1," * 700 + "1] == []", "more than 2000 parts"),
        ("__import__('os').system('id')", "unknown function '__import__'"),
    ],
)
def test_a_hostile_expression_is_one_error_line_for_run_and_validate(
    run_ax: RunAx, tmp_path: Path, ledger: Path, condition: str, message: str
) -> None:
    path = str(write_workflow(tmp_path, workflow([step("s", "x", **{"if": condition})])))
    for command in ("validate", "run"):
        result = run_ax("workflow", command, path)
        result.assert_clean_error(2)
        lines = result.stderr.splitlines()
        assert all(line.startswith("error: ") and "steps[0].if: " in line for line in lines)
        assert message in result.stderr
    assert agent_runs(ledger) == []


def test_the_deepest_expression_allowed_runs(run_ax: RunAx, tmp_path: Path) -> None:
    condition = "(" * 48 + "context.x" + ")" * 48 + " == 1"
    path = str(write_workflow(tmp_path, workflow([step("s", "x", **{"if": condition})])))
    result = run_ax("workflow", "run", path, "--format", "json", "--context", '{"x": 1}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"]["s"]["state"] == "completed"


def test_the_listing_shows_an_expression_on_one_short_line(run_ax: RunAx, tmp_path: Path) -> None:
    """validate's listing and graph labels: control characters escaped, at most 60
    characters; the JSON summary keeps the expression whole."""
    long = 'context.mode == "' + "a" * 100 + '"'
    data = workflow(
        [
            step("odd", "x", **{"if": 'context.x == "\u202e\u0000"\n && true'}),
            step("long", "x", **{"if": long}),
        ]
    )
    path = str(write_workflow(tmp_path, data))
    listing = run_ax("workflow", "validate", path)
    assert listing.returncode == 0, listing.stderr
    assert 'odd (if context.x == "\\u202e\\x00" && true)' in listing.stdout
    assert f"long (if {long[:59]}…)" in listing.stdout
    assert "\u202e" not in listing.stdout and "\x00" not in listing.stdout
    graph = run_ax("workflow", "graph", path).stdout
    assert f"if {long[:59]}…".replace('"', "#quot;") in graph and "\u202e" not in graph
    summary = json.loads(run_ax("workflow", "validate", path, "--format", "json").stdout)
    assert summary["conditions"]["long"] == long


def test_a_runaway_comprehension_fails_within_its_time_limit(run_ax: RunAx, tmp_path: Path) -> None:
    data = workflow([step("slow", "x", **{"if": "context.n.all(x, context.n.all(y, x + y >= 0))"})])
    started = time.monotonic()
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json",
        "--context", json.dumps({"n": list(range(4000))}),
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    entry = json.loads(result.stdout)["steps"]["slow"]
    assert entry["errorKind"] == "expression_error" and "took longer than" in entry["error"]


def test_a_skipped_step_stays_skipped_on_resume(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """The decision is stored: a skipped step stays skipped on resume, whatever the
    context or the expression would say now."""
    gate = tmp_path / "gate"
    data = workflow(
        [
            step("hold", f"ax:wait-file={gate}"),
            step("gated", "x", **{"if": "context.go"}),
            step("after", "x", ["hold", "gated"]),
        ]
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(
        ["workflow", "run", str(path), "--format", "json", "--context", '{"go": false}'],
        env=ax_env, cwd=tmp_path,
    )  # fmt: skip
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id, _ = pause_and_release(run_ax, runner, tmp_path, gate)
    resumed = json.loads(run_ax("workflow", "resume", execution_id, "--format", "json").stdout)
    assert resumed["state"] == "completed"
    assert resumed["steps"]["gated"]["state"] == "skipped"
    assert [r.step for r in agent_runs(ledger)] == ["hold", "after"]
