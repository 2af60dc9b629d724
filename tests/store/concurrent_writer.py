"""One of several `ax`-like processes hammering one SQLite file (run by test_concurrency).

Waits until a shared start time, opens the store (racing the others to create and migrate a
fresh file), upserts the same workflow, then for a few seconds appends events, records step
attempts and updates its execution, with reads and heartbeats in between. Any exception
escapes as a traceback and a non-zero exit; success prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from automatosx.store import open_store
from automatosx.store.records import (
    AppendEvent,
    FinishStepAttempt,
    SetContext,
    SetExecutionState,
    StartStepAttempt,
)
from tests.store import sample


def main(db: str, worker: int, start_at: float, seconds: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    store = open_store(db)
    workflow = store.upsert_workflow(sample.definition())
    execution, lease = sample.execution(store, workflow.id, owner=f"worker-{worker}")
    count = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        now = time.time()
        store.write(
            lease,
            [
                StartStepAttempt(f"s{count}", 1, "backend", "command", now),
                AppendEvent("step_started", f"s{count}", {"seq": count, "worker": worker}),
                FinishStepAttempt(f"s{count}", 1, "completed", now, output={"seq": count}),
                SetContext({"last": count}),
            ],
        )
        count += 1
        if count % 10 == 0:
            lease, _ = store.renew_lease(lease, 60)
            assert store.get_execution(execution.id[:8]).context == {"last": count - 1}
            assert len(store.list_events(execution.id, after_id=0, limit=5)) == 5
            store.list_executions(limit=5)
    store.write(lease, [SetExecutionState("completed"), AppendEvent("workflow_completed")])
    store.close()
    print(json.dumps({"execution": execution.id, "count": count}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
