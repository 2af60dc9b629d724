"""`ax workflow list | runs | status | events | checkpoints | prune`, run as a user would.

Data is written through the store API in the test process to the same `AX_DB` the CLI reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.events import WorkflowCompleted, WorkflowStarted
from automatosx.store.records import AppendEvent, CreateCheckpoint, SetExecutionState
from tests.conftest import AX, RunAx
from tests.store import sample
from tests.store.steps import Steps
from tests.store.test_executions import insert_execution_with_id

ISO_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture
def db(ax_env: dict[str, str]) -> Iterator[Store]:
    store = open_store(ax_env["AX_DB"])
    try:
        yield store
    finally:
        store.close()


STARTED = WorkflowStarted("code-review", "1.0.0", "cli", 0, 3, 1, sample.OWNER)
RESULTS = {"parse": {"functions": ["a"]}, "scan": {"issues": []}, "report": "all clear"}


def _completed_run(store: Store, workflow_id: str | None = None) -> str:
    """The sample workflow run to completion: its three steps one after the other, each
    half a second, the whole run two seconds."""
    execution, lease = sample.execution(store, workflow_id)
    steps = Steps(execution.id)
    t = time.time() - 30
    store.write(
        lease,
        [*steps.created(), SetExecutionState("executing", at=t), AppendEvent(STARTED, at=t)],
    )
    for n, key in enumerate(RESULTS):
        begin = t + n * 0.5
        store.write(lease, steps.start(key, begin))
        store.write(lease, steps.succeed(key, begin + 0.5, output=RESULTS[key]))
    store.write(
        lease,
        [
            CreateCheckpoint("executing", {"f": "x.py"}, list(RESULTS), [], "after", "automatic"),
            SetExecutionState("completed", at=t + 2),
            AppendEvent(WorkflowCompleted(2000, 3), at=t + 2),
        ],
    )
    return execution.id


EVENT_TYPES = [
    "workflow_started",
    *(["step_started", "step_completed"] * 3),
    "workflow_completed",
]


def test_list_table_and_json(run_ax: RunAx, db: Store) -> None:
    _completed_run(db)
    result = run_ax("workflow", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "name": "code-review",
            "version": "1.0.0",
            "description": "Multi-agent code review",
            "totalExecutions": 1,
            "successfulExecutions": 1,
            "successRate": 1.0,
            "avgDurationMs": 2000,
        }
    ]
    table = run_ax("workflow", "list")
    assert table.returncode == 0
    assert "code-review" in table.stdout and "100%" in table.stdout and "2.0s" in table.stdout


def test_list_of_an_empty_store(run_ax: RunAx) -> None:
    result = run_ax("workflow", "list", "--format", "json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])
    assert run_ax("workflow", "list").returncode == 0


def test_runs_newest_first_with_filters(run_ax: RunAx, db: Store) -> None:
    first = _completed_run(db)
    other = db.upsert_workflow(sample.definition("other-flow"))
    second, _ = sample.execution(db, other.id)
    result = run_ax("workflow", "runs", "--format", "json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert [r["executionId"] for r in runs] == [second.id, first]
    assert list(runs[1]) == [
        "executionId",
        "workflowName",
        "state",
        "triggeredBy",
        "priority",
        "startedAt",
        "completedAt",
        "durationMs",
        "parentExecutionId",
        "orphaned",
    ]
    assert runs[1]["state"] == "completed" and runs[1]["durationMs"] == 2000
    assert runs[0]["orphaned"] is False and runs[1]["orphaned"] is False
    assert runs[1]["startedAt"] is not None and runs[0]["completedAt"] is None
    filtered = json.loads(
        run_ax("workflow", "runs", "--workflow", "code-review", "--format", "json").stdout
    )
    assert [r["executionId"] for r in filtered] == [first]
    limited = json.loads(run_ax("workflow", "runs", "--limit", "1", "--format", "json").stdout)
    assert [r["executionId"] for r in limited] == [second.id]
    table = run_ax("workflow", "runs")
    assert first in table.stdout and "completed" in table.stdout and "s ago" in table.stdout
    run_ax("workflow", "runs", "--workflow", "no-such-flow").assert_clean_error(2)
    run_ax("workflow", "runs", "--limit", "0").assert_clean_error(2)


def test_status_json_and_table(run_ax: RunAx, db: Store) -> None:
    execution_id = _completed_run(db)
    result = run_ax("workflow", "status", execution_id[:8], "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["executionId"] == execution_id and document["state"] == "completed"
    assert list(document["steps"]) == ["parse", "scan", "report"]
    assert all(step["state"] == "completed" for step in document["steps"].values())
    assert document["steps"]["parse"]["durationMs"] == 500
    assert document["stepResults"] == RESULTS
    assert document["durationMs"] == 2000
    table = run_ax("workflow", "status", execution_id)
    assert table.returncode == 0
    assert execution_id in table.stdout and "3/3 completed" in table.stdout
    assert "parse" in table.stdout and "backend" in table.stdout
    assert "all clear" in table.stdout  # the result of the final step, report


def test_unknown_short_and_ambiguous_ids_exit_2(run_ax: RunAx, db: Store) -> None:
    workflow = sample.workflow(db)
    insert_execution_with_id(db, "abcdef01-0000-4000-8000-000000000001", workflow.id)
    insert_execution_with_id(db, "abcdef01-0000-4000-8000-000000000002", workflow.id)
    for command in ("status", "events", "checkpoints"):
        unknown = run_ax("workflow", command, "ffffffff-0000-4000-8000-000000000000")
        unknown.assert_clean_error(2)
        assert "no execution" in unknown.stderr
        ambiguous = run_ax("workflow", command, "abcdef01", "--format", "json")
        ambiguous.assert_clean_error(2)
        assert "ambiguous" in ambiguous.stderr and ambiguous.stdout == ""
    run_ax("workflow", "status", "abcdef0").assert_clean_error(2)


def test_events_json_and_table(run_ax: RunAx, db: Store) -> None:
    execution_id = _completed_run(db)
    result = run_ax("workflow", "events", execution_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert [e["type"] for e in events] == EVENT_TYPES
    assert list(events[0]) == ["id", "executionId", "type", "stepKey", "data", "createdAt"]
    assert events[0]["data"] == STARTED.data() and events[0]["stepKey"] is None
    assert events[0]["data"]["steps"] == 3 and events[0]["data"]["workflowName"] == "code-review"
    assert events[1]["stepKey"] == "parse"
    assert events[2]["data"] == {"attempt": 1, "durationMs": 500, "provider": "command"}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["executionId"] == execution_id for e in events)
    table = run_ax("workflow", "events", execution_id)
    assert table.returncode == 0
    assert "step_completed" in table.stdout
    assert '{"attempt":1,"agent":"backend"}' in table.stdout


def test_events_follow_prints_new_events_until_terminal(
    db: Store, ax_env: dict[str, str], tmp_path: Path
) -> None:
    execution, lease = sample.execution(db)
    steps = Steps(execution.id)
    db.write(lease, [*steps.created(), AppendEvent(STARTED)])
    follower = subprocess.Popen(
        [AX, "workflow", "events", execution.id, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ax_env,
        cwd=tmp_path,
    )
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # printed once the follower has seen it
        assert "workflow_started" in first
        db.write(lease, steps.start("parse", time.time()))
        db.write(lease, steps.succeed("parse", time.time()))
        assert follower.poll() is None  # still following: the run is not over
        db.write(lease, [SetExecutionState("completed"), AppendEvent(WorkflowCompleted(1, 3))])
        rest, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    lines = [first, *rest.splitlines()]
    types = ["workflow_started", "step_started", "step_completed", "workflow_completed"]
    assert [next(t for t in types if t in line) for line in lines if line.strip()] == types


def test_events_follow_json_prints_one_document(run_ax: RunAx, db: Store) -> None:
    execution_id = _completed_run(db)
    result = run_ax("workflow", "events", execution_id, "--follow", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [e["type"] for e in json.loads(result.stdout)] == EVENT_TYPES


def test_checkpoints_json_table_and_totals(run_ax: RunAx, db: Store) -> None:
    execution, lease = sample.execution(db)
    for n in range(3):
        db.write(
            lease,
            [
                CreateCheckpoint(
                    "executing", {"n": n}, ["parse"][:n], ["scan"], f"cp{n}", "automatic"
                )
            ],
        )
    result = run_ax("workflow", "checkpoints", execution.id, "--limit", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [c["label"] for c in listed] == ["cp2", "cp1"]
    assert list(listed[0]) == [
        "id",
        "executionId",
        "state",
        "label",
        "createdBy",
        "createdAt",
        "sizeBytes",
        "completedSteps",
        "pendingSteps",
    ]
    assert listed[0]["completedSteps"] == ["parse"] and listed[0]["pendingSteps"] == ["scan"]
    assert listed[0]["sizeBytes"] > 0 and listed[0]["createdBy"] == "automatic"
    assert re.match(ISO_PATTERN, listed[0]["createdAt"])
    table = run_ax("workflow", "checkpoints", execution.id)
    assert table.returncode == 0
    assert "cp0" in table.stdout and "KB" in table.stdout
    assert (
        "3 checkpoints" in table.stdout
        and "total, oldest" in table.stdout
        and "s ago" in table.stdout
    )
    none, _ = sample.execution(db)
    empty = run_ax("workflow", "checkpoints", none.id, "--format", "json")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, [])


def test_prune(run_ax: RunAx, db: Store) -> None:
    execution_id = _completed_run(db)
    kept = run_ax("workflow", "prune", "--older-than", "7d", "--format", "json")
    assert (kept.returncode, json.loads(kept.stdout)) == (0, {"checkpoints": 0, "events": 0})
    pruned = run_ax("workflow", "prune", "--older-than", "0s")
    assert pruned.returncode == 0, pruned.stderr
    assert f"Pruned 1 checkpoint(s) and {len(EVENT_TYPES)} event(s)" in pruned.stdout
    assert db.list_events(execution_id) == [] and db.list_checkpoints(execution_id) == []
    run_ax("workflow", "prune", "--older-than", "7 days").assert_clean_error(2)
    run_ax("workflow", "prune").assert_clean_error(2)


@pytest.mark.postgres
def test_read_commands_on_postgres(run_ax: RunAx, pg_url: str) -> None:
    with open_store(pg_url) as store:  # type: ignore[attr-defined]
        execution_id = _completed_run(store)
    env = {"AX_DB": pg_url}
    status = run_ax("workflow", "status", execution_id[:8], "--format", "json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "completed"
    runs = json.loads(run_ax("workflow", "runs", "--format", "json", env=env).stdout)
    assert [r["executionId"] for r in runs] == [execution_id]
    run_ax("workflow", "status", "ffffffff", env=env).assert_clean_error(2)
