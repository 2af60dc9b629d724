"""Eight processes on one SQLite file: no "database is locked", no lost row, strict order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from automatosx.store import open_store

WORKERS = 8
WRITE_SECONDS = 2.5
REPO = Path(__file__).resolve().parents[2]
WRITER = [sys.executable, "-m", "tests.store.concurrent_writer"]


def test_eight_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")  # does not exist yet: the workers race to create it
    start_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.concurrent_writer",
                db,
                str(n),
                str(start_at),
                str(WRITE_SECONDS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for n in range(WORKERS)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    with open_store(db) as store:  # type: ignore[attr-defined]
        [workflow] = store.list_workflows()  # one row despite eight concurrent upserts
        assert workflow.total_executions == WORKERS
        assert workflow.successful_executions == WORKERS
        for result in results:
            count = result["count"]
            assert count > 0
            execution = store.get_execution(result["execution"])
            assert execution.state == "completed"
            assert execution.context == {"last": count - 1}
            events = store.list_events(execution.id)
            assert [e.data.get("seq") for e in events[:-1]] == list(range(count))
            assert events[-1].type == "workflow_completed"
            assert [e.id for e in events] == sorted({e.id for e in events})
            steps = store.list_step_executions(execution.id)
            assert len(steps) == count and all(s.state == "completed" for s in steps)
