"""The pure parts of the runtime: slot scheduling, retry rules, recovery classification,
context parsing and lease ownership checks."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from automatosx.definition.validation import validate_document
from automatosx.errors import WorkflowValidationError
from automatosx.runtime.attempts import retry_rules
from automatosx.runtime.context import check_context, parse_context
from automatosx.runtime.lease import is_orphaned, lease_seconds, owner_is_dead
from automatosx.runtime.recovery import recover_progress
from automatosx.runtime.scheduler import SlotScheduler
from automatosx.store.records import ExecutionRecord, StepExecutionRecord
from tests.runtime.support import step, workflow


def test_scheduler_fills_slots_and_treats_exclusive_steps_as_barriers() -> None:
    scheduler = SlotScheduler(2, exclusive=["x"])
    scheduler.add_ready(["a", "b", "c", "x", "d"])
    assert scheduler.take_startable() == ["a", "b"]
    scheduler.release("a")
    assert scheduler.take_startable() == ["c"]
    scheduler.release("b")
    scheduler.release("c")
    assert scheduler.take_startable() == ["x"]  # alone
    scheduler.add_ready(["e"])
    assert scheduler.take_startable() == []
    scheduler.release("x")
    assert scheduler.take_startable() == ["d", "e"]


def test_retry_rules_delays_and_filters() -> None:
    policy = {
        "maxRetries": 3,
        "retryDelayMs": 100,
        "retryBackoffMultiplier": 3,
        "retryableErrors": ["timeout"],
    }
    definition = validate_document(
        workflow([step("p", retryPolicy=policy), step("d")], config={"maxRetries": 1})
    )
    rules = retry_rules(definition.step("p"), definition.config)
    assert rules.max_attempts == 4
    rng = random.Random(1)
    for retry, base in ((1, 0.1), (2, 0.3), (3, 0.9)):
        delay = rules.delay_before_retry(retry, rng)
        assert base <= delay <= base * 1.1
    assert rules.may_retry("timeout", 1) and not rules.may_retry("timeout", 4)
    assert not rules.may_retry("provider_error", 1)
    default = retry_rules(definition.step("d"), definition.config)
    assert default.max_attempts == 2 and default.may_retry("provider_error", 1)
    assert not default.may_retry("cancelled", 1) and not default.may_retry("template_error", 1)
    assert not default.may_retry("auth_error", 1)  # a rejected key stays rejected


def attempt(key: str, n: int, state: str, kind: str | None = None) -> StepExecutionRecord:
    return StepExecutionRecord("e", key, n, state, output={"n": n}, error_kind=kind)  # type: ignore[arg-type]


def test_recovery_classifies_steps_from_their_attempts() -> None:
    definition = validate_document(
        workflow(
            [
                step("done"),
                step("mid-run"),
                step("backoff", retryPolicy={"maxRetries": 2}),
                step("final"),
                step("opt", optional=True),
                step("never"),
            ]
        )
    )
    records = [
        attempt("done", 1, "failed", "timeout"),
        attempt("done", 2, "completed"),
        attempt("mid-run", 1, "running"),
        attempt("backoff", 1, "failed", "rate_limit"),
        attempt("final", 1, "failed", "provider_error"),
        attempt("opt", 1, "failed", "provider_error"),
    ]
    progress = recover_progress(definition, records)
    assert progress.outputs == {"done": {"n": 2}}
    assert progress.interrupted == {"mid-run": 1}
    assert progress.failed_steps.keys() == {"final"}
    assert progress.empty_steps == {"opt"}
    assert progress.last_attempt["backoff"] == 1 and progress.failures["backoff"] == 1
    assert "never" not in progress.last_attempt


def test_context_parsing(tmp_path: Path) -> None:
    assert parse_context(None) == {}
    assert parse_context('{"a": 1}') == {"a": 1}
    (tmp_path / "c.json").write_text('{"b": [1]}')
    assert parse_context(f"@{tmp_path / 'c.json'}") == {"b": [1]}
    for bad in ("{", "3", f"@{tmp_path / 'nope.json'}"):
        with pytest.raises(WorkflowValidationError):
            parse_context(bad)
    definition = validate_document(workflow([step("a", "{{x}} {{y.z}}")]))
    check_context(definition, {"x": 1, "y": {}})
    with pytest.raises(WorkflowValidationError, match=r"\{\{y\}\}"):
        check_context(definition, {"x": 1})


def test_lease_owner_liveness(monkeypatch: pytest.MonkeyPatch) -> None:
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert owner_is_dead(f"{host}:{dead.pid}:u")
    assert not owner_is_dead(f"{host}:{os.getpid()}:u")
    assert not owner_is_dead(f"elsewhere:{dead.pid}:u")  # another host: cannot tell
    base = ExecutionRecord("e", "w", "n", "executing", {}, "cli", 0, 0.0)
    live = replace(base, lease_owner=f"{host}:{os.getpid()}:u", lease_expires_at=1e12)
    assert not is_orphaned(live)
    assert is_orphaned(replace(live, lease_expires_at=1.0))
    assert is_orphaned(replace(live, lease_owner=f"{host}:{dead.pid}:u"))
    assert not is_orphaned(replace(live, state="paused", lease_expires_at=1.0))
    assert not is_orphaned(replace(live, state="completed", lease_expires_at=1.0))
    monkeypatch.setenv("AX_LEASE_SECONDS", "1.5")
    assert lease_seconds() == 1.5
    monkeypatch.setenv("AX_LEASE_SECONDS", "nonsense")
    assert lease_seconds() == 30.0
