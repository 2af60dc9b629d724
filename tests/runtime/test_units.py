"""The pure parts of the runtime: retry rules, context parsing and lease ownership checks
(slots, readiness and recovery: test_instances)."""

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
from automatosx.errors import AxError, WorkflowValidationError
from automatosx.runtime.attempts import retry_rules
from automatosx.runtime.context import check_context, parse_context
from automatosx.runtime.lease import lease_seconds
from automatosx.store.liveness import is_orphaned, owner_is_dead
from automatosx.store.records import ExecutionRecord
from tests.runtime.support import step, workflow


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
        delays = [rules.delay_before_retry(retry, rng) for _ in range(200)]
        assert all(base <= delay <= base * 1.1 for delay in delays)
        # jitter exists and spreads over the whole 10%: many steps do not retry in lock-step
        assert min(delays) < base * 1.01 and max(delays) > base * 1.09
    assert rules.may_retry("timeout", 1) and not rules.may_retry("timeout", 4)
    assert not rules.may_retry("provider_error", 1)
    default = retry_rules(definition.step("d"), definition.config)
    assert default.max_attempts == 2 and default.may_retry("provider_error", 1)
    assert not default.may_retry("cancelled", 1) and not default.may_retry("template_error", 1)
    assert not default.may_retry("auth_error", 1)  # a rejected key stays rejected
    assert not default.may_retry("worker_lost", 1)  # its lost workers were its retries
    listed = {"maxRetries": 3, "retryableErrors": ["worker_lost"]}
    lost = validate_document(workflow([step("l", retryPolicy=listed)])).step("l")
    assert not retry_rules(lost, definition.config).may_retry("worker_lost", 1)  # even named


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
    with pytest.raises(AxError, match="AX_LEASE_SECONDS must be a positive number"):
        lease_seconds()  # an error, not a 30 s lease nobody asked for
    monkeypatch.delenv("AX_LEASE_SECONDS")
    assert lease_seconds() == 30.0
