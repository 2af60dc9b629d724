"""Failure semantics (SPEC section 5): continueOnError both ways, optional steps, template
and output-schema failures, and the complete ordered event log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    assert_dead,
    by_step,
    pause_and_release,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def test_failure_without_continue_cancels_running_steps_and_starts_nothing(
    run_workflow, ledger: Path, tmp_path: Path
) -> None:
    busy_started = tmp_path / "busy-started"
    data = workflow(
        [
            step("bad", f"ax:wait-file={busy_started} ax:fail-always"),
            step("busy", f"ax:announce={busy_started} ax:sleep=30 ax:ignore-term"),
            step("after-bad", "x", ["bad"]),
            step("after-busy", "x", ["busy"]),
        ]
    )
    run = run_workflow(data)
    assert run.outcome.state == "failed"
    assert run.outcome.exit_code == 1
    latest = run.latest()
    assert latest["bad"].state == "failed"
    assert latest["busy"].state == "cancelled" and latest["busy"].error_kind == "cancelled"
    for never in ("after-bad", "after-busy"):  # listed, never started
        assert (latest[never].state, latest[never].attempt) == ("cancelled", 0)
    runs = by_step(agent_runs(ledger))
    assert set(runs) == {"bad", "busy"}
    assert_dead(runs["busy"][0].pid)
    types = run.event_types()
    assert (
        types.index("step_failed") < types.index("step_cancelled") < types.index("workflow_failed")
    )
    assert run.store.get_execution(run.execution_id).error.startswith("step 'bad' failed")


def test_continue_on_error_runs_independent_branches_and_skips_downstream(
    run_workflow, ledger: Path
) -> None:
    data = workflow(
        [
            step("bad", "ax:fail-always"),
            step("child", "x", ["bad"]),
            step("grandchild", "x", ["child"]),
            step("other", "ax:sleep=0.3"),
            step("other-next", "x", ["other"]),
        ],
        config={"continueOnError": True},
    )
    run = run_workflow(data)
    assert run.outcome.state == "failed"
    latest = run.latest()
    assert latest["other"].state == "completed" and latest["other-next"].state == "completed"
    assert latest["child"].state == "skipped" and latest["grandchild"].state == "skipped"
    skipped = [e for e in run.events() if e.type == "step_skipped"]
    assert {e.step_key for e in skipped} == {"child", "grandchild"}
    assert all(e.data["failedStep"] == "bad" for e in skipped)
    assert set(by_step(agent_runs(ledger))) == {"bad", "other", "other-next"}


def test_optional_failure_lets_dependents_run_with_empty_placeholders(
    run_workflow, ledger: Path
) -> None:
    data = workflow(
        [
            step("maybe", "ax:fail-always", optional=True),
            step("use", "ax:echo before[{{maybe}}]after [{{maybe.result.deep}}]", ["maybe"]),
        ]
    )
    run = run_workflow(data)
    assert run.outcome.state == "completed"
    latest = run.latest()
    assert latest["maybe"].state == "failed"
    assert latest["use"].output == "ax:echo before[]after []"


def test_template_error_fails_the_step_without_retrying(run_workflow, ledger: Path) -> None:
    data = workflow(
        [step("a", 'ax:output={"x":1}'), step("b", "{{a.missing}}", ["a"])],
        config={"maxRetries": 3},
    )
    run = run_workflow(data)
    assert run.outcome.state == "failed"
    b = run.latest()["b"]
    assert (b.state, b.error_kind, b.attempt) == ("failed", "template_error", 1)
    assert "missing" in (b.error_message or "")
    assert set(by_step(agent_runs(ledger))) == {"a"}


def test_output_schema_violation_is_invalid_output(run_workflow) -> None:
    schema = {"type": "object", "required": ["functions"]}
    data = workflow([step("a", 'ax:output={"other":1}', outputSchema=schema)])
    run = run_workflow(data)
    a = run.latest()["a"]
    assert (a.state, a.error_kind) == ("failed", "invalid_output")
    assert "functions" in (a.error_message or "")


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"type": "object", "properties": {"a": {"$ref": "other.json"}}},
        {"$ref": "http://127.0.0.1:9/schema.json"},  # never fetched: refused up front
    ],
)
def test_an_output_schema_with_an_unresolvable_ref_is_a_validation_error(
    run_ax: RunAx, tmp_path: Path, ledger: Path, schema: dict[str, Any]
) -> None:
    """A `$ref` nothing can resolve is a broken schema: reported by validate and run before
    anything executes, not as a `provider_error` from jsonschema's internals mid-run."""
    path = write_workflow(tmp_path, workflow([step("a", "ax:output={}", outputSchema=schema)]))
    for command in ("validate", "run"):
        result = run_ax("workflow", command, str(path))
        result.assert_clean_error(2)
        assert "steps[0].outputSchema" in result.stderr and "$ref" in result.stderr
    assert agent_runs(ledger) == []


def test_an_output_schema_with_local_refs_works(run_workflow) -> None:
    schema = {
        "$defs": {
            "names": {"type": "array", "items": {"$ref": "#/$defs/name"}},
            "name": {"type": "string"},
        },
        "type": "object",
        "properties": {"functions": {"$ref": "#/$defs/names"}},
        "required": ["functions"],
    }
    good = step("good", 'ax:output={"functions":["f"]}', outputSchema=schema)
    bad = step("bad", 'ax:output={"functions":[1]}', outputSchema=schema)
    run = run_workflow(workflow([good, bad], config={"continueOnError": True}))
    latest = run.latest()
    assert latest["good"].state == "completed"
    assert (latest["bad"].state, latest["bad"].error_kind) == ("failed", "invalid_output")


def test_structured_and_text_outputs_flow_into_prompts(run_workflow) -> None:
    data = workflow(
        [
            step("data", 'ax:output={"items":["x","y"],"n":2}'),
            step("text", "ax:echo hello"),
            step("use", "ax:echo {{data.items.1}}|{{data}}|{{text}}|{{topic}}", ["data", "text"]),
        ]
    )
    run = run_workflow(data, {"topic": "T"})
    assert run.outcome.state == "completed"
    latest = run.latest()
    assert latest["data"].output == {"items": ["x", "y"], "n": 2}
    assert latest["text"].output == "ax:echo hello"
    assert latest["use"].output == 'ax:echo y|{"items":["x","y"],"n":2}|ax:echo hello|T'


def test_event_log_is_complete_and_ordered(run_workflow) -> None:
    data = workflow(
        [
            step("a"),
            step(
                "b", "ax:fail-attempts=1", ["a"], retryPolicy={"maxRetries": 1, "retryDelayMs": 10}
            ),
        ]
    )
    run = run_workflow(data)
    assert run.outcome.state == "completed"
    events = run.events()
    assert [(e.type, e.step_key) for e in events] == [
        ("workflow_started", None),
        ("step_started", "a"),
        ("step_completed", "a"),
        ("step_started", "b"),
        ("step_retrying", "b"),
        ("step_started", "b"),
        ("step_completed", "b"),
        ("workflow_completed", None),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    times = [e.created_at for e in events]
    assert times == sorted(times)
    attempts = [(a.step_key, a.attempt, a.state, a.agent, a.provider) for a in run.attempts()]
    assert attempts == [
        ("a", 1, "completed", "rec", "command"),
        ("b", 1, "failed", "rec", "command"),
        ("b", 2, "completed", "rec", "command"),
    ]
    for attempt in run.attempts():
        assert attempt.started_at and attempt.completed_at and attempt.duration_ms is not None


def test_a_resumed_run_sees_exactly_the_values_the_live_run_saw(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """A step printing `1e400` (Infinity to Python's json) was stored as null while its
    dependents saw Infinity live; a value is normalised once, at the source, so live and
    resumed dependents see the same `null`."""
    gate = tmp_path / "gate"
    data = workflow(
        [
            step("big", 'ax:output={"x":1e400,"n":1}'),
            step("live", "ax:echo {{big}}", ["big"]),
            step("hold", f"ax:wait-file={gate}", ["big"]),
            step("later", "ax:echo {{big}}", ["hold"]),
        ],
        config={"parallelism": 2},
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=ax_env, cwd=tmp_path)
    wait_until(lambda: any(r.step == "hold" for r in agent_runs(ledger)))
    execution_id, _ = pause_and_release(run_ax, runner, tmp_path, gate)
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads(resumed.stdout)["stepResults"]
    assert results["big"] == {"x": None, "n": 1}
    assert results["live"] == 'ax:echo {"x":null,"n":1}'
    assert results["later"] == results["live"]
