"""The `status`/`run`/`resume` JSON document (views.execution) and its rendering
(cli/execution_view)."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from rich.console import Console

from automatosx.cli.execution_view import render_execution
from automatosx.store.base import Store
from automatosx.store.records import IncrementResumeCount, SetExecutionState
from automatosx.views.execution import execution_document
from tests.store import sample
from tests.store.steps import Steps

CONTRACT_KEYS = [
    "executionId",
    "workflowId",
    "workflowName",
    "state",
    "triggeredBy",
    "priority",
    "startedAt",
    "completedAt",
    "durationMs",
    "parentExecutionId",
    "resumeCount",
    "error",
    "steps",
    "stepResults",
    "context",
]
STEP_KEYS = ["state", "attempts", "durationMs", "agent", "provider", "error"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
T = 1_800_000_000.0


def _failed_run(store: Store) -> str:
    """parse completes; scan fails twice (the workflow allows one retry); report, which
    needs scan, never starts and is skipped."""
    definition = sample.definition(config={"maxRetries": 1})
    execution, lease = sample.execution(store, store.upsert_workflow(definition).id)
    steps = Steps(execution.id, definition)
    store.write(lease, [*steps.created(), SetExecutionState("executing", at=T)])
    store.write(lease, steps.start("parse", T))
    store.write(
        lease,
        [
            *steps.succeed(
                "parse", T + 0.5, output={"functions": ["a"]}, provider="openai", model="gpt-x",
                tokens_in=15, tokens_out=2, cost_usd=0.03,
            ),
            *steps.start("scan", T + 1),
        ],
    )  # fmt: skip
    store.write(lease, steps.fail("scan", T + 2, "rate_limit", "429"))
    store.write(lease, steps.start("scan", T + 3))
    store.write(
        lease,
        [
            *steps.fail("scan", T + 3.5, "timeout", "too slow"),
            *steps.skip("report", "scan", T + 4),
            IncrementResumeCount(),
            SetExecutionState("failed", error="step scan failed", at=T + 4),
        ],
    )
    return execution.id


def test_document_has_the_contract_shape_from_the_instances(store: Store) -> None:
    execution = store.get_execution(_failed_run(store))
    document = execution_document(store, execution)
    assert list(document)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert document["executionId"] == execution.id
    assert document["workflowName"] == "code-review"
    assert (document["state"], document["error"]) == ("failed", "step scan failed")
    assert (document["triggeredBy"], document["priority"], document["resumeCount"]) == ("cli", 0, 1)
    assert ISO.match(document["startedAt"]) and ISO.match(document["completedAt"])
    assert document["durationMs"] == 4000 and isinstance(document["durationMs"], int)
    assert list(document["steps"]) == ["parse", "scan", "report"]  # the file's order
    for step in document["steps"].values():
        assert list(step)[: len(STEP_KEYS)] == STEP_KEYS
    scan = document["steps"]["scan"]  # its latest attempt
    assert scan["state"] == "failed" and scan["attempts"] == 2 and scan["durationMs"] == 500
    assert scan["error"] == "timeout: too slow" and scan["errorKind"] == "timeout"
    assert (scan["agent"], scan["provider"]) == ("security", "command")
    assert (scan["tokensIn"], scan["tokensOut"], scan["costUsd"]) == (None, None, None)
    parse = document["steps"]["parse"]
    assert (parse["state"], parse["attempts"], parse["error"]) == ("completed", 1, None)
    assert (parse["agent"], parse["provider"], parse["durationMs"]) == ("backend", "openai", 500)
    assert (parse["tokensIn"], parse["tokensOut"], parse["costUsd"]) == (15, 2, 0.03)
    report = document["steps"]["report"]  # never started: listed, with no attempt
    assert (report["state"], report["attempts"], report["durationMs"]) == ("skipped", 0, None)
    assert report["error"] == "upstream step 'scan' failed" and report["agent"] == "writer"
    assert document["stepResults"] == {"parse": {"functions": ["a"]}}
    assert document["context"] == {"filePath": "x.py"}
    assert (document["tokensIn"], document["tokensOut"], document["costUsd"]) == (15, 2, 0.03)
    assert document["orphaned"] is False and document["workdir"] is None


def test_usage_totals_per_step_and_overall(store: Store) -> None:
    """Each step's usage is its instance's totals; the execution's, the sum over steps
    (steps whose provider reported nothing count for nothing)."""
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    store.write(lease, steps.created())
    store.write(lease, [*steps.start("parse", T), *steps.succeed("parse", T + 1)])
    store.write(
        lease,
        [
            *steps.start("scan", T + 1),
            *steps.succeed("scan", T + 2, tokens_in=10, tokens_out=0, cost_usd=0.01),
        ],
    )
    store.write(
        lease,
        [
            *steps.start("report", T + 2),
            *steps.fail("report", T + 3, "rate_limit", "429"),
            *steps.start("report", T + 3),
            *steps.succeed("report", T + 4, tokens_in=5, tokens_out=2, cost_usd=0.02),
        ],
    )
    document = execution_document(store, store.get_execution(execution.id))
    usage = {
        key: (step["tokensIn"], step["tokensOut"], step["costUsd"])
        for key, step in document["steps"].items()
    }
    assert usage == {"parse": (None, None, None), "scan": (10, 0, 0.01), "report": (5, 2, 0.02)}
    assert document["steps"]["report"]["attempts"] == 2
    assert (document["tokensIn"], document["tokensOut"], document["costUsd"]) == (15, 2, 0.03)


def test_steps_that_never_started_are_listed_pending(store: Store) -> None:
    workflow = sample.workflow(store)
    execution_id = str(uuid.uuid4())
    steps = Steps(execution_id)
    execution, _ = store.create_execution(
        workflow_id=workflow.id,
        context={},
        triggered_by="cli",
        priority=0,
        owner=sample.OWNER,
        lease_seconds=60,
        workdir="/srv/project",
        execution_id=execution_id,
        opening_ops=steps.created(),
    )
    document = execution_document(store, execution)
    assert list(document["steps"]) == ["parse", "scan", "report"]
    for key, agent in (("parse", "backend"), ("scan", "security"), ("report", "writer")):
        step = document["steps"][key]
        assert (step["state"], step["attempts"], step["agent"]) == ("pending", 0, agent)
        assert step["durationMs"] is None and step["error"] is None
    assert document["stepResults"] == {}
    assert document["startedAt"] is None and document["durationMs"] is None
    assert (document["tokensIn"], document["tokensOut"], document["costUsd"]) == (None,) * 3
    assert document["workdir"] == "/srv/project" and document["orphaned"] is False


def test_an_execution_nobody_runs_is_orphaned(store: Store) -> None:
    execution, _ = sample.execution(store, lease_seconds=-1)  # its lease already expired
    assert execution_document(store, execution)["orphaned"] is True


def test_render_execution_shows_header_and_steps(store: Store) -> None:
    document = execution_document(store, store.get_execution(_failed_run(store)))
    buffer = io.StringIO()
    render_execution(document, console=Console(file=buffer, width=160, no_color=True))
    text = buffer.getvalue()
    assert document["executionId"] in text
    assert "failed" in text and "1/3 completed" in text
    assert "step scan failed" in text and "timeout: too slow" in text
    assert "15 in / 2 out tokens" in text and "$0.0300" in text
    for key in ("parse", "scan", "report"):
        assert key in text


@pytest.mark.parametrize("color_system", ["standard", "256", "truecolor"])
def test_the_step_table_colours_states_on_a_colour_terminal(
    store: Store, color_system: str
) -> None:
    document = execution_document(store, store.get_execution(_failed_run(store)))
    buffer = io.StringIO()
    out = Console(file=buffer, force_terminal=True, color_system=color_system)  # type: ignore[arg-type]
    render_execution(document, console=out)
    rows = {line.split()[0]: line for line in buffer.getvalue().splitlines() if line.strip()}
    assert "\x1b[32mcompleted\x1b[0m" in rows["parse"]
    assert "\x1b[31mfailed\x1b[0m" in rows["scan"]
    assert "\x1b[1mStep\x1b[0m  " in buffer.getvalue()
