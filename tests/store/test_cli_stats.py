"""`ax workflow stats` through the real CLI: real runs of command agents (a step that fails
once and then succeeds, a forEach, a step that always fails), the JSON document, the
tables, the filters and their errors, a window that leaves an old execution out, an empty
directory, and `Client.stats` giving the same document."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from automatosx.api import Client
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.views.attempts import attempts_document
from tests.conftest import RunAx
from tests.runtime.support import step, workflow, write_workflow
from tests.store import stats_sample
from tests.store.stats_sample import DAY

RETRY_AT_ONCE = {"maxRetries": 1, "retryDelayMs": 0}


def reviewed() -> dict[str, Any]:
    return workflow(
        [
            step("flaky", "ax:fail-attempts=1", retryPolicy=RETRY_AT_ONCE),
            step("triage", 'ax:output={"files":["a","b","c"]}'),
            step(
                "review", "ax:echo {{file}}", ["triage"],
                forEach={"items": "steps.triage.output.files", "as": "file"},
            ),
            step("report", "ax:echo done", ["flaky", "review"]),
        ],
        name="reviewed",
    )  # fmt: skip


def broken() -> dict[str, Any]:
    return workflow([step("broken", "ax:fail-always", retryPolicy=RETRY_AT_ONCE)], name="broken")


def run(run_ax: RunAx, tmp_path: Path, data: dict[str, Any], name: str) -> int:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    result = run_ax("workflow", "run", str(write_workflow(folder, data)), "--format", "json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode


def stats_json(run_ax: RunAx, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_ax("workflow", "stats", *args, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)  # exactly one document
    return document


@pytest.fixture
def three_runs(run_ax: RunAx, tmp_path: Path) -> None:
    assert run(run_ax, tmp_path, reviewed(), "one") == 0
    assert run(run_ax, tmp_path, reviewed(), "two") == 0
    assert run(run_ax, tmp_path, broken(), "three") == 1


def test_stats_of_real_runs(run_ax: RunAx, three_runs: None) -> None:
    document = stats_json(run_ax)
    workflows = {w["name"]: w for w in document["workflows"]}
    assert list(workflows) == ["broken", "reviewed"]
    ok, bad = workflows["reviewed"], workflows["broken"]
    assert (ok["executions"], ok["completed"], ok["failed"], ok["successRate"]) == (2, 2, 0, 1.0)
    assert (bad["executions"], bad["completed"], bad["failed"], bad["successRate"]) == (
        1,
        0,
        1,
        0.0,
    )
    assert 0 < ok["p50DurationMs"] <= ok["p95DurationMs"]
    assert 0 < ok["parallelEfficiency"] <= 1 and bad["parallelEfficiency"] is None
    steps = {(s["workflowName"], s["stepKey"]): s for s in document["steps"]}
    assert list(steps) == [
        ("broken", "broken"),
        *(("reviewed", key) for key in ("flaky", "triage", "review", "report")),
    ]

    def figures(key: tuple[str, str]) -> tuple[Any, ...]:
        entry = steps[key]
        return tuple(entry[f] for f in ("runs", "failed", "retried", "retrySuccessRate"))

    assert figures(("reviewed", "flaky")) == (2, 0, 2, 1.0)  # failed once, then succeeded
    assert steps[("reviewed", "flaky")]["retryRate"] == 1.0
    assert figures(("reviewed", "review")) == (6, 0, 0, None)  # 3 items a run, not the step
    assert figures(("broken", "broken")) == (1, 1, 1, 0.0)
    assert steps[("broken", "broken")]["failureRate"] == 1.0
    (group,) = document["errors"]  # attempt 1 of flaky (twice) and attempts 1, 2 of broken
    assert (group["kind"], group["count"]) == ("provider_error", 4)
    assert "planned failure of attempt <n>" in group["message"]
    assert not any(ch.isdigit() for ch in group["message"])
    assert group["steps"] == [
        {"workflowName": "broken", "stepKey": "broken", "count": 2},
        {"workflowName": "reviewed", "stepKey": "flaky", "count": 2},
    ]


def test_a_real_run_stores_its_critical_path_as_it_completes(
    run_ax: RunAx, tmp_path: Path, three_runs: None
) -> None:
    """The engine's completing write stores each completed execution's critical path (the
    failed one gets none), and it is the one the statistics' walk of its chains finds."""
    store = open_store(str(tmp_path / "ax.db"))
    try:
        rows = store._fetch_all(  # type: ignore[attr-defined]
            "SELECT e.id, e.state, e.critical_path_ms FROM workflow_executions e"
        )
        assert sorted((state, ms is not None) for _id, state, ms in rows) == [
            ("completed", True), ("completed", True), ("failed", False)
        ]  # fmt: skip
        for execution_id, state, ms in rows:
            if state != "completed":
                continue
            spans = _run_ms(store, execution_id)
            assert spans["flaky"] > 0 and spans["review"] > 0
            assert ms == max(
                spans["flaky"] + spans["report"],
                spans["triage"] + spans["review"] + spans["report"],
            )
        stored = stats_json(run_ax)
        with store._transaction() as db:  # type: ignore[attr-defined]
            db.execute("UPDATE workflow_executions SET critical_path_ms = NULL")
        walked = stats_json(run_ax)
        assert walked["workflows"] == stored["workflows"], (walked, stored)
    finally:
        store.close()


def _run_ms(store: Store, execution_id: str) -> dict[str, int]:
    """Each file step's weight: its attempts' durations (the attempts view the API serves),
    a forEach step's own span."""
    execution = store.get_execution(execution_id)
    weights = {}
    for record in store.list_instances(execution_id):
        if record.parent_key is not None:
            continue
        attempts = attempts_document(store, execution, record.key)
        if record.items is not None:
            weights[record.key] = record.duration_ms or 0
        else:
            weights[record.key] = sum(a["durationMs"] or 0 for a in attempts)
    return weights


def test_stats_tables_and_filters(run_ax: RunAx, three_runs: None) -> None:
    table = run_ax("workflow", "stats")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["Workflow", "Executions", "Completed"]
    assert any(line.split()[:4] == ["reviewed", "2", "2", "0"] for line in lines)
    assert any(line.split()[:3] == ["reviewed", "flaky", "2"] for line in lines)
    assert any("planned failure of attempt <n>" in line for line in lines)

    only = stats_json(run_ax, "--workflow", "broken", "--since", "1h")
    assert [w["name"] for w in only["workflows"]] == ["broken"]
    assert [s["stepKey"] for s in only["steps"]] == ["broken"]
    assert [g["steps"] for g in only["errors"]] == [
        [{"workflowName": "broken", "stepKey": "broken", "count": 2}]
    ]
    unknown = run_ax("workflow", "stats", "--workflow", "nope")
    unknown.assert_clean_error(2)
    assert "no workflow named 'nope'" in unknown.stderr
    bad_age = run_ax("workflow", "stats", "--since", "a week")
    bad_age.assert_clean_error(2)
    assert "invalid age 'a week'" in bad_age.stderr


def test_since_leaves_an_old_execution_out(run_ax: RunAx, tmp_path: Path) -> None:
    t = float(int(time.time()))
    store = open_store(str(tmp_path / "ax.db"))  # the file the CLI reads (AX_DB)
    try:
        old = stats_sample.Run(store, stats_sample.other_flow(), [])
        old.state("executing", t - 30 * DAY)
        old.ran("solo", t - 30 * DAY, t - 30 * DAY + 2)
        old.state("completed", t - 30 * DAY + 2)
    finally:
        store.close()
    assert stats_json(run_ax)["workflows"] == []  # the default window: 7 days
    (entry,) = stats_json(run_ax, "--since", "5w")["workflows"]
    assert (entry["name"], entry["executions"], entry["p50DurationMs"]) == ("other-flow", 1, 2000)
    assert stats_json(run_ax, "--since", "29d")["workflows"] == []


def test_an_empty_directory_gives_an_empty_document_and_creates_nothing(
    run_ax: RunAx, tmp_path: Path
) -> None:
    before = time.time()
    document = stats_json(run_ax, "--since", "12h", env={"AX_DB": ""})
    since = datetime.fromisoformat(document.pop("since").replace("Z", "+00:00")).timestamp()
    assert before - 12 * 3600 - 1 <= since <= time.time() - 12 * 3600 + 1
    assert document == {"workflows": [], "steps": [], "errors": []}
    table = run_ax("workflow", "stats", env={"AX_DB": ""})
    assert table.returncode == 0 and table.stdout == ""
    assert "No executions started in the last 7d." in table.stderr
    assert list(tmp_path.iterdir()) == []


def test_client_stats_is_the_cli_document(run_ax: RunAx, tmp_path: Path, three_runs: None) -> None:
    since = datetime.fromtimestamp(int(time.time()) - 3600, tz=UTC)
    from_api = Client(tmp_path / "ax.db").stats(since, workflow="reviewed")
    from_cli = stats_json(run_ax, "--since", "1h", "--workflow", "reviewed")
    assert from_api["since"] == since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert {**from_api, "since": None} == {**from_cli, "since": None}
    assert Client(tmp_path / "ax.db").stats("7d")["workflows"] == stats_json(run_ax)["workflows"]
