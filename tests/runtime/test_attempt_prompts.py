"""Each attempt's rendered prompt, stored in the write that starts it and read back through
the attempts document (views.attempts), from real runs of the real CLI on both stores:
placeholders filled from the context and upstream outputs, kept for an attempt a retry
superseded, secrets masked, null for approval gates and sub-workflow steps, and the prompt
a cache hit answered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automatosx.errors import NotFoundError
from automatosx.store import open_store
from automatosx.views.attempts import attempts_document
from tests.conftest import RunAx
from tests.runtime.support import agent_runs, step, workflow, write_workflow

ATTEMPT_KEYS = [
    "attempt", "state", "agent", "provider", "model", "prompt", "output", "error", "errorKind",
    "startedAt", "completedAt", "durationMs", "tokensIn", "tokensOut", "costUsd",
]  # fmt: skip
SECRET = "sk-prompt-0123456789abcdef"


def run(
    run_ax: RunAx, tmp_path: Path, data: dict[str, Any], db: str, *args: str, **env: str
) -> dict[str, Any]:
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json", *args,
        env={"AX_DB": db, **env},
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["state"] == "completed", (document, result.stderr)
    return document


def attempts(db: str, execution_id: str, key: str) -> list[dict[str, Any]]:
    with open_store(db) as store:  # type: ignore[attr-defined]
        return attempts_document(store, store.get_execution(execution_id), key)


def test_a_retried_step_keeps_each_attempts_rendered_prompt(
    run_ax: RunAx, tmp_path: Path, store_url: str
) -> None:
    outline = 'ax:output={"outline":["intro","body"]}'
    retry = {"maxRetries": 1, "retryDelayMs": 10}
    data = workflow(
        [
            step("plan", f"Plan {{{{topic}}}} {outline}"),
            step("draft", "Draft {{topic}}: {{plan.outline.1}} ax:fail-attempts=1", ["plan"],
                 retryPolicy=retry),
        ]
    )  # fmt: skip
    status = run(run_ax, tmp_path, data, store_url, "--context", '{"topic": "caching"}')
    draft = attempts(store_url, status["executionId"], "draft")
    assert [list(a) for a in draft] == [ATTEMPT_KEYS, ATTEMPT_KEYS]
    rendered = "Draft caching: body ax:fail-attempts=1"
    assert [(a["attempt"], a["state"], a["prompt"]) for a in draft] == [
        (1, "failed", rendered),  # the history row the retry moved it to
        (2, "completed", rendered),
    ]
    first, second = draft
    assert first["errorKind"] == "provider_error" and "planned failure" in first["error"]
    assert first["output"] is None
    assert second["output"] == {"step": "draft", "attempt": 2}
    assert (second["error"], second["errorKind"]) == (None, None)
    assert {(a["agent"], a["provider"]) for a in draft} == {("rec", "command")}
    assert first["completedAt"] <= second["startedAt"]  # ISO-8601 UTC: ordered as text
    assert all(a["startedAt"].endswith("Z") and a["durationMs"] >= 0 for a in draft)
    [plan] = attempts(store_url, status["executionId"], "plan")
    assert plan["prompt"] == f"Plan caching {outline}"
    assert json.loads(json.dumps(draft)) == draft  # the document is plain JSON
    with pytest.raises(NotFoundError, match="did you mean 'draft'"):
        attempts(store_url, status["executionId"], "drafts")


def test_a_secret_in_a_prompt_is_stored_masked(
    run_ax: RunAx, tmp_path: Path, store_url: str
) -> None:
    data = workflow(
        [
            step("leak", "ax:echo token={{token}}"),
            step("use", "Call with {{token}} after [{{leak}}]", ["leak"]),
        ]
    )
    context = json.dumps({"token": SECRET})
    status = run(run_ax, tmp_path, data, store_url, "--context", context, SERVICE_API_KEY=SECRET)
    [leak] = attempts(store_url, status["executionId"], "leak")
    [use] = attempts(store_url, status["executionId"], "use")
    assert leak["prompt"] == "ax:echo token=***"
    assert use["prompt"] == "Call with *** after [ax:echo token=***]"
    assert SECRET not in json.dumps([leak, use])


def test_gates_and_sub_workflow_steps_have_no_prompt(
    run_ax: RunAx, tmp_path: Path, store_url: str
) -> None:
    child = workflow([step("inner", "inner {{x}}")], name="child-flow")
    (tmp_path / "child.json").write_text(json.dumps(child), encoding="utf-8")
    approval = {"message": "Go?", "timeoutMs": 50, "onTimeout": "approve"}
    data = workflow(
        [
            {"key": "gate", "approval": approval},
            {"key": "child", "workflow": "./child.json", "with": {"x": "1"},
             "dependencies": ["gate"]},
        ]
    )  # fmt: skip
    status = run(run_ax, tmp_path, data, store_url)
    [gate] = attempts(store_url, status["executionId"], "gate")
    assert (gate["state"], gate["prompt"], gate["output"]["by"]) == ("completed", None, "timeout")
    [sub] = attempts(store_url, status["executionId"], "child")
    assert (sub["state"], sub["prompt"]) == ("completed", None)
    [inner] = attempts(store_url, status["steps"]["child"]["childExecutionId"], "inner")
    assert inner["prompt"] == "inner 1"  # the child's own steps have theirs


def test_a_cache_hit_keeps_the_prompt_it_answered(
    run_ax: RunAx, tmp_path: Path, store_url: str, ledger: Path
) -> None:
    data = workflow([step("ask", "Summarise {{topic}}")], config={"cache": True})
    context = '{"topic": "retries"}'
    paid = run(run_ax, tmp_path, data, store_url, "--context", context)
    hit = run(run_ax, tmp_path, data, store_url, "--context", context)
    assert hit["steps"]["ask"]["cached"] is True and len(agent_runs(ledger)) == 1
    for status in (paid, hit):
        [ask] = attempts(store_url, status["executionId"], "ask")
        assert (ask["state"], ask["prompt"]) == ("completed", "Summarise retries")
