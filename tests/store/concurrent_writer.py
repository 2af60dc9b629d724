"""One of several `ax`-like processes hammering one SQLite file (run by test_concurrency).

Waits until a shared start time, opens the store (racing the others to create and migrate a
fresh file), upserts the same workflow, then for a few seconds stores step instances, their
attempts and events and updates its execution, with reads and heartbeats in between. Any
exception escapes as a traceback and a non-zero exit; success prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

from automatosx.store import open_store
from automatosx.store.events import Event, WorkflowCompleted
from automatosx.store.records import (
    AppendEvent,
    EventType,
    PutInstance,
    RecordAttempt,
    SetContext,
    SetExecutionState,
    StepExecutionRecord,
    StepInstanceRecord,
)
from tests.store import sample


@dataclass(frozen=True)
class Written(Event):
    """A step event numbered by the worker, so the test can check none is lost or reordered."""

    type: ClassVar[EventType] = "step_completed"
    step_key: str
    seq: int
    worker: int


def main(db: str, worker: int, start_at: float, seconds: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    store = open_store(db)
    workflow = store.upsert_workflow(sample.definition())
    execution, lease = sample.execution(store, workflow.id, owner=f"worker-{worker}")
    count = 0
    started = time.time()
    deadline = started + seconds
    while time.time() < deadline:
        now = time.time()
        key = f"s{count}"
        store.write(
            lease,
            [
                PutInstance(
                    StepInstanceRecord(
                        execution.id, key, key, count, "completed", attempt=1, agent="backend",
                        provider="command", output={"seq": count}, started_at=now,
                        completed_at=now, duration_ms=0,
                    )
                ),
                RecordAttempt(
                    StepExecutionRecord(
                        execution.id, key, 1, "completed", "backend", "command", started_at=now,
                        completed_at=now,
                    )
                ),
                AppendEvent(Written(key, count, worker)),
                SetContext({"last": count}),
            ],
        )  # fmt: skip
        count += 1
        if count % 10 == 0:
            lease, _ = store.renew_lease(lease, 60)
            assert store.get_execution(execution.id[:8]).context == {"last": count - 1}
            assert len(store.list_events(execution.id, after_id=0, limit=5)) == 5
            assert len(store.list_instances(execution.id)) == count
            store.list_executions(limit=5)
    duration_ms = int((time.time() - started) * 1000)
    store.write(
        lease,
        [
            SetExecutionState("completed"),
            AppendEvent(WorkflowCompleted(duration_ms, count)),
        ],
    )
    store.close()
    print(json.dumps({"execution": execution.id, "count": count}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
