"""WAL checkpoints off the commit path: the WAL stays bounded, nothing committed is lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest

from automatosx.definition.models import WorkflowDefinition
from automatosx.store import open_store, wal_checkpointer
from automatosx.store.base import Store
from automatosx.store.events import Event, StepCompleted, StepStarted
from automatosx.store.records import (
    AppendEvent,
    EventType,
    ExecutionRecord,
    Lease,
    PutInstance,
    RecordAttempt,
    StepExecutionRecord,
    StepInstanceRecord,
    WriteOp,
)

STEPS = 1500


@dataclass(frozen=True)
class _Numbered(Event):
    type: ClassVar[EventType] = "step_started"
    step_key: str
    n: int


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


def _running(execution_id: str, i: int, now: float) -> StepInstanceRecord:
    """Step s{i} (not in the definition: a chain of generated steps) running its attempt."""
    key = f"s{i}"
    return StepInstanceRecord(
        execution_id, key, key, i, "running", attempt=1, agent="x", provider="python",
        started_at=now,
    )  # fmt: skip


def _complete(running: StepInstanceRecord, now: float) -> list[WriteOp]:
    """The running attempt of an instance completes, as the engine records it."""
    duration = int((now - (running.started_at or now)) * 1000)
    done = replace(
        running, state="completed", output="x" * 200, completed_at=now, duration_ms=duration
    )
    attempt = StepExecutionRecord(
        running.execution_id, running.key, 1, "completed", "x", "python",
        started_at=running.started_at, completed_at=now,
    )  # fmt: skip
    event = StepCompleted(running.key, 1, duration, "python")
    return [PutInstance(done), RecordAttempt(attempt), AppendEvent(event, now)]


def _run_chain_writes(db: Path, synchronous: str = "normal", wal_bound: int = 8 << 20) -> str:
    """The writes of a STEPS-step chain, one transaction per step, as the engine does them."""
    store = open_store(str(db), synchronous=synchronous)
    try:
        execution, lease = _leased_execution(store)
        running = _running(execution.id, 0, time.time())
        store.write(lease, [PutInstance(running)])
        for i in range(1, STEPS + 1):
            now = time.time()
            following = _running(execution.id, i, now)
            store.write(
                lease,
                [
                    *_complete(running, now),
                    PutInstance(following),
                    AppendEvent(StepStarted(following.key, 1, "x"), now),
                ],
            )
            running = following
        wal = Path(f"{db}-wal")
        # Unbounded it would reach ~50 MB; how far under that it stays depends on when the
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
    # Small thresholds so the bound shows after a few MB (unbounded it would be ~50 MB).
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
    instances = reader.execute(
        "SELECT state, COUNT(*) FROM workflow_step_instances WHERE execution_id = ? "
        "GROUP BY state ORDER BY state",
        (execution_id,),
    ).fetchall()
    reader.close()
    assert (events, completed) == (2 * STEPS, STEPS)
    assert instances == [("completed", STEPS), ("running", 1)]


def test_in_full_mode_the_writer_keeps_the_wal_short_and_every_commit_is_kept(
    tmp_path: Path,
) -> None:
    # Checkpoints every FULL_WRITER_EVERY_COMMITS commits keep the WAL at a few dozen
    # commits' pages (~10 pages each here: the two instance rows, the attempt and the two
    # events, with their indexes); unbounded it would be ~50 MB.
    db = tmp_path / "full.db"
    bound = wal_checkpointer.FULL_WRITER_EVERY_COMMITS * 14 * 4120
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
            writer.write(lease, [AppendEvent(_Numbered(f"s{i}", i), time.time())])
            seen = reader.list_events(execution.id, after_id=0)
            assert [event.data["n"] for event in seen] == list(range(i + 1))
    finally:
        reader.close()
        writer.close()
