"""Fixtures for runtime tests: a ledger the test agents write to, short leases, and an
in-process way to run a workflow against the real SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automatosx.store import open_store
from automatosx.store.base import Store
from tests.runtime.support import InProcessRun, assert_dead, read_ledger, run_in_process


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def ax_env(ax_env: dict[str, str], ledger: Path) -> dict[str, str]:
    """The shared CLI environment plus the ledger path and a short lease."""
    return {**ax_env, "AX_TEST_LEDGER": str(ledger), "AX_LEASE_SECONDS": "2"}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: Path) -> Iterator[Store]:
    """The real SQLite store at tmp_path/ax.db; agents started in-process see it and the
    ledger through the environment."""
    db = tmp_path / "ax.db"
    monkeypatch.setenv("AX_DB", str(db))
    monkeypatch.setenv("AX_TEST_LEDGER", str(ledger))
    monkeypatch.setenv("AX_LEASE_SECONDS", "2")
    opened = open_store(str(db))
    yield opened
    opened.close()


@pytest.fixture
def run_workflow(store: Store, tmp_path: Path) -> Callable[..., InProcessRun]:
    def run(data: dict[str, Any], context: dict[str, Any] | None = None) -> InProcessRun:
        return run_in_process(store, data, context or {}, workdir=tmp_path)

    return run


@pytest.fixture(autouse=True)
def _no_agent_left_behind(ledger: Path) -> Iterator[None]:
    """After every test, every agent process the ledger saw is gone."""
    yield
    for line in read_ledger(ledger):
        assert_dead(line["pid"])
