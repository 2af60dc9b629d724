"""A dynamic agent (SPEC section 8): `agent: "{{triage.reviewer}}"` with `agentChoices`,
through the real CLI: the rendered agent runs and is stored; a name outside the choices
fails the step with template_error; validate checks the pairing and every choice."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    command_agent,
    read_ledger,
    step,
    workflow,
    write_workflow,
)


def review_flow(reviewer: str) -> dict[str, object]:
    return workflow(
        [
            step("triage", f'ax:output={{"reviewer":"{reviewer}"}}'),
            step(
                "review", "ax:echo review by the chosen agent", ["triage"],
                agent="{{triage.reviewer}}", agentChoices=["security", "quality"],
            ),
        ],
        agents={"security": command_agent(), "quality": command_agent()},
    )  # fmt: skip


def test_the_rendered_agent_runs_and_is_stored(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, review_flow("quality"))), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["steps"]["review"]["agent"] == "quality"
    starts = [line for line in read_ledger(ledger) if line["event"] == "start"]
    assert {line["step"]: line["agent"] for line in starts}["review"] == "quality"  # AX_AGENT
    events = json.loads(
        run_ax("workflow", "events", document["executionId"], "--format", "json").stdout
    )
    (started,) = [e for e in events if e["type"] == "step_started" and e["stepKey"] == "review"]
    assert started["data"]["agent"] == "quality"
    table = run_ax("workflow", "status", document["executionId"]).stdout
    assert "quality" in table


def test_a_name_outside_the_choices_fails_with_template_error(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, review_flow("backend"))), "--format", "json"
    )
    assert result.returncode == 1
    entry = json.loads(result.stdout)["steps"]["review"]
    assert entry["errorKind"] == "template_error"
    assert "'backend'" in entry["error"] and "security, quality" in entry["error"]
    assert [r.step for r in agent_runs(ledger)] == ["triage"]  # no agent ran for it


def test_validate_checks_the_template_and_every_choice(run_ax: RunAx, tmp_path: Path) -> None:
    data = workflow(
        [
            step("triage", "x"),
            step("no-choices", "x", ["triage"], agent="{{triage.reviewer}}"),
            step("fixed", "x", agentChoices=["rec"]),
            step("not-upstream", "x", agent="{{triage.who}}", agentChoices=["rec"]),
        ]
    )
    result = run_ax("workflow", "validate", str(write_workflow(tmp_path, data)))
    result.assert_clean_error(2)
    text = result.stderr
    assert "steps[1].agent: the agent template '{{triage.reviewer}}' needs agentChoices" in text
    assert "steps[2].agentChoices: agentChoices is for an agent template" in text
    assert "steps[3].agent: {{triage.who}} refers to step 'triage', which is not upstream" in text
    # once the file itself is valid, every choice must be a usable agent
    usable = workflow(
        [
            step("triage", "x"),
            step("r", "x", ["triage"], agent="{{triage.who}}", agentChoices=["rec", "ghost"]),
        ]
    )
    result = run_ax("workflow", "validate", str(write_workflow(tmp_path, usable)))
    result.assert_clean_error(2)
    assert "steps[1].agentChoices[1]: unknown agent 'ghost'" in result.stderr
