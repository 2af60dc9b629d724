"""WAL checkpoints off the commit path: the WAL stays bounded, nothing committed is lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from automatosx.definition.models import WorkflowDefinition
from automatosx.store import open_store, wal_checkpointer
from automatosx.store.base import Store
from automatosx.store.records import (
    AppendEvent,
    ExecutionRecord,
    FinishStepAttempt,
    Lease,
    StartStepAttempt,
)

STEPS = 1500


def _leased_execution(store: Store) -> tuple[ExecutionRecord, Lease]:
    """A one-step workflow and an execution leased to this test, to write through."""
    definition = WorkflowDefinition.model_validate(
        {"name": "wal", "steps": [{"key": "a", "agent": "x", "prompt": "p"}]}
    )
    workflow = store.upsert_workflow(definition)
    return store.create_execution(
        workflow_id=workflow.id,
        context={},
        triggered_by="test",
        priority=0,
        owner="test-owner",
        lease_seconds=60,
    )


def _run_chain_writes(db: Path, synchronous: str = "normal", wal_bound: int = 8 << 20) -> str:
    """The writes of a STEPS-step chain, one transaction per step, as the engine does them."""
    store = open_store(str(db), synchronous=synchronous)
    try:
        execution, lease = _leased_execution(store)
        store.write(lease, [StartStepAttempt("s0", 1, "x", "python", time.time())])
        for i in range(1, STEPS + 1):
            now = time.time()
            store.write(
                lease,
                [
                    FinishStepAttempt(f"s{i - 1}", 1, "completed", now, output="x" * 200),
                    AppendEvent("step_completed", f"s{i - 1}", {"attempt": 1}, now),
                    StartStepAttempt(f"s{i}", 1, "x", "python", now),
                    AppendEvent("step_started", f"s{i}", {"attempt": 1}, now),
                ],
            )
        wal = Path(f"{db}-wal")
        # Unbounded it would reach ~20 MB; how far under that it stays depends on when the
        # background thread gets the CPU (4.3 MB seen on a loaded machine), so the bound
        # leaves room for scheduling and still fails if checkpoints stop.
        assert wal.stat().st_size < wal_bound, wal.stat().st_size
        if synchronous == "full":  # the writer checkpoints itself, no thread (see module)
            assert "ax-wal-checkpointer" not in [t.name for t in threading.enumerate()]
        return execution.id
    finally:
        store.close()


def test_the_wal_stays_bounded_and_every_commit_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small thresholds so the bound shows after a few MB (unbounded it would be ~20 MB).
    monkeypatch.setattr(wal_checkpointer, "KICK_EVERY_COMMITS", 8)
    monkeypatch.setattr(wal_checkpointer, "WRITER_EVERY_COMMITS", 32)
    db = tmp_path / "wal.db"
    execution_id = _run_chain_writes(db)
    # The last connection to close checkpointed everything and removed the WAL.
    assert not Path(f"{db}-wal").exists()
    reader = sqlite3.connect(db)
    events = reader.execute(
        "SELECT COUNT(*) FROM workflow_events WHERE execution_id = ?", (execution_id,)
    ).fetchone()[0]
    completed = reader.execute(
        "SELECT COUNT(*) FROM workflow_step_executions WHERE state = 'completed'"
    ).fetchone()[0]
    reader.close()
    assert (events, completed) == (2 * STEPS, STEPS)


def test_in_full_mode_the_writer_keeps_the_wal_short_and_every_commit_is_kept(
    tmp_path: Path,
) -> None:
    # Checkpoints every FULL_WRITER_EVERY_COMMITS commits keep the WAL at a few dozen
    # commits' pages (~7 pages each here); unbounded it would be ~20 MB.
    db = tmp_path / "full.db"
    bound = wal_checkpointer.FULL_WRITER_EVERY_COMMITS * 10 * 4120
    execution_id = _run_chain_writes(db, synchronous="full", wal_bound=bound)
    assert not Path(f"{db}-wal").exists()
    reader = sqlite3.connect(db)
    events = reader.execute(
        "SELECT COUNT(*) FROM workflow_events WHERE execution_id = ?", (execution_id,)
    ).fetchone()[0]
    reader.close()
    assert events == 2 * STEPS


def test_a_reader_sees_each_commit_while_checkpoints_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_checkpointer, "KICK_EVERY_COMMITS", 4)
    monkeypatch.setattr(wal_checkpointer, "WRITER_EVERY_COMMITS", 16)
    db = tmp_path / "read.db"
    writer = open_store(str(db))
    reader = open_store(str(db))
    try:
        execution, lease = _leased_execution(writer)
        for i in range(300):
            writer.write(lease, [AppendEvent("step_started", f"s{i}", {"n": i}, time.time())])
            seen = reader.list_events(execution.id, after_id=0)
            assert [event.data["n"] for event in seen] == list(range(i + 1))
    finally:
        reader.close()
        writer.close()
