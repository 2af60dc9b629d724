"""The `status`/`run`/`resume` JSON document and its rendering (cli/execution_view)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from automatosx.cli.execution_view import execution_document, render_execution
from automatosx.store.base import Store
from automatosx.store.records import (
    FinishStepAttempt,
    IncrementResumeCount,
    SetExecutionState,
    StartStepAttempt,
)
from tests.store import sample

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
    execution, lease = sample.execution(store)
    store.write(
        lease,
        [
            SetExecutionState("executing", at=T),
            StartStepAttempt("scan", 1, "security", "command", T + 1),
            StartStepAttempt("parse", 1, "backend", "command", T),
        ],
    )
    store.write(
        lease,
        [
            FinishStepAttempt("parse", 1, "completed", T + 0.5, output={"functions": ["a"]}),
            FinishStepAttempt(
                "scan", 1, "failed", T + 2, error_kind="rate_limit", error_message="429",
                provider="openai", tokens_in=10, tokens_out=0, cost_usd=0.01,
            ),
            StartStepAttempt("scan", 2, "security", "command", T + 3),
        ],
    )  # fmt: skip
    store.write(
        lease,
        [
            FinishStepAttempt(
                "scan", 2, "failed", T + 3.5, error_kind="timeout", error_message="too slow",
                tokens_in=5, tokens_out=2, cost_usd=0.02,
            ),
            FinishStepAttempt("report", 1, "skipped", T + 4),
            IncrementResumeCount(),
            SetExecutionState("failed", error="step scan failed", at=T + 4),
        ],
    )  # fmt: skip
    return execution.id


def test_document_has_the_contract_shape_from_latest_attempts(store: Store) -> None:
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
    scan = document["steps"]["scan"]
    assert scan["state"] == "failed" and scan["attempts"] == 2 and scan["durationMs"] == 500
    assert scan["error"] == "timeout: too slow" and scan["errorKind"] == "timeout"
    assert (scan["agent"], scan["provider"]) == ("security", "command")
    assert (scan["tokensIn"], scan["tokensOut"], scan["costUsd"]) == (15, 2, 0.03)
    parse = document["steps"]["parse"]
    assert (parse["state"], parse["attempts"], parse["error"]) == ("completed", 1, None)
    assert parse["tokensIn"] is None and parse["costUsd"] is None
    assert document["steps"]["report"]["state"] == "skipped"
    assert document["steps"]["report"]["attempts"] == 0
    assert document["stepResults"] == {"parse": {"functions": ["a"]}}
    assert document["context"] == {"filePath": "x.py"}
    assert (document["tokensIn"], document["tokensOut"], document["costUsd"]) == (15, 2, 0.03)


def test_steps_without_an_attempt_row_are_absent(store: Store) -> None:
    execution, _ = sample.execution(store)
    document = execution_document(store, execution)
    assert document["steps"] == {} and document["stepResults"] == {}
    assert document["startedAt"] is None and document["durationMs"] is None


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
