"""`Store.stats` and the analytics document (SPEC section 11), on both stores, with exact
figures from executions of known timestamps (`stats_sample`: what each one holds and why
each expected figure is what it is)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from automatosx.definition.models import WorkflowDefinition
from automatosx.errors import NotFoundError
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.records import CreateCheckpoint
from automatosx.store.stats import ErrorStats, _regexp_masks, longest_chain_ms, mask_error
from automatosx.views.stats import error_groups, stats_document
from tests.store import sample, stats_sample
from tests.store.stats_sample import DAY


@pytest.fixture
def t() -> float:
    return float(int(time.time()) - 3600)


@pytest.fixture
def document(store: Store, t: float) -> dict[str, Any]:
    stats_sample.seed(store, t)
    return stats_document(store, since=t - 7 * DAY)


def by_key(entries: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(e[k] for k in keys) if len(keys) > 1 else e[keys[0]]: e for e in entries}


def test_workflow_figures(document: dict[str, Any], t: float) -> None:
    assert document["since"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t - 7 * DAY))
    assert [w["name"] for w in document["workflows"]] == ["other-flow", "review-flow"]
    review = by_key(document["workflows"], "name")["review-flow"]
    assert review == {
        "name": "review-flow",
        "executions": 4,  # the old one started before the window; the running one counts
        "completed": 2,
        "failed": 1,
        "successRate": 0.6667,  # of the 3 finished
        "p50DurationMs": 3000,  # nearest rank of 500, 3000, 5000
        "p95DurationMs": 5000,
        "parallelEfficiency": 0.85,  # (4.5 s / 5 s + 0.4 s / 0.5 s) / 2
        "checkpointOverheadMs": 1.0,  # (1.5 + 0.5 and none) / 2; the unmeasured one left out
        "tokensIn": 25,  # 10 + 5 and 7 of the two billed failed attempts + 3
        "tokensOut": 4,
        "costUsd": 0.2,
    }
    assert by_key(document["workflows"], "name")["other-flow"] == {
        "name": "other-flow", "executions": 1, "completed": 1, "failed": 0, "successRate": 1.0,
        "p50DurationMs": 1000, "p95DurationMs": 1000, "parallelEfficiency": 1.0,
        "checkpointOverheadMs": 0.0, "tokensIn": None, "tokensOut": None, "costUsd": None,
    }  # fmt: skip


def test_step_figures(document: dict[str, Any]) -> None:
    keys = [(s["workflowName"], s["stepKey"]) for s in document["steps"]]
    assert keys == [
        ("other-flow", "solo"),
        *(("review-flow", key) for key in ("parse", "lint", "scan", "review", "report")),
    ]  # by workflow, then the file's order
    steps = by_key(document["steps"], "stepKey")
    figures = ("runs", "failed", "failureRate", "retried", "retryRate", "retrySuccessRate")
    durations = ("p50DurationMs", "p95DurationMs", "costUsd")
    expected = {
        "parse": ((3, 0, 0.0, 0, 0.0, None), (250, 1000, 0.1)),
        # retried twice: completed in the first, failed for good in the second
        "lint": ((3, 1, 0.3333, 2, 0.6667, 0.5), (1250, 1500, 0.02)),
        # the second's scan was cancelled waiting for its retry: not a run
        "scan": ((2, 0, 0.0, 0, 0.0, None), (100, 3000, 0.03)),
        # 3 + 1 + 1 items under the forEach step's key, the fan-outs themselves not counted
        # (nor the second's failure, which is its item's); review[2] took 500 + 500 ms
        "review": ((5, 1, 0.2, 2, 0.4, 0.5), (1000, 2000, None)),
        "report": ((2, 0, 0.0, 0, 0.0, None), (100, 500, 0.05)),
        "solo": ((1, 0, 0.0, 0, 0.0, None), (1000, 1000, None)),
    }
    for key, (counts, timing) in expected.items():
        assert tuple(steps[key][f] for f in figures) == counts, key
        assert tuple(steps[key][f] for f in durations) == timing, key


def test_errors_are_grouped_by_kind_and_masked_message(document: dict[str, Any], t: float) -> None:
    def at(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t + seconds)) + (
            f".{round((seconds % 1) * 1000):03d}Z"
        )

    assert document["errors"] == [
        {
            "kind": "timeout",
            "message": "step lint timed out after <n> ms",  # 500, 250, 500, 500 ms
            "count": 4,
            "lastSeenAt": at(12.5),
            "steps": [{"workflowName": "review-flow", "stepKey": "lint", "count": 4}],
        },
        {  # review[2] of the first, review[0] of the second twice (not the step's own)
            "kind": "rate_limit",
            "message": "rate limited (request <id>, trace <id>)",
            "count": 3,
            "lastSeenAt": at(11),
            "steps": [{"workflowName": "review-flow", "stepKey": "review", "count": 3}],
        },
        {  # counted once, though its attempt was also closed when it was cancelled
            "kind": "provider_error",
            "message": "exit status <n>: planned failure",
            "count": 1,
            "lastSeenAt": at(10.75),
            "steps": [{"workflowName": "review-flow", "stepKey": "scan", "count": 1}],
        },
    ]


def test_error_groups_fold_steps_and_put_the_most_frequent_then_the_latest_first() -> None:
    def bucket(kind: str, workflow: str, step: str, count: int, at: float) -> ErrorStats:
        return ErrorStats(kind, f"{kind} <n>", workflow, step, count, at)

    groups = error_groups(
        [
            bucket("timeout", "a", "x", 1, 10.0),
            bucket("rate_limit", "b", "y", 2, 5.0),
            bucket("timeout", "b", "y", 2, 20.0),  # the same error in another workflow
            bucket("auth_error", "a", "x", 3, 1.0),
            bucket("rate_limit", "a", "z", 1, 30.0),
        ]
    )
    assert [(g["kind"], g["count"], g["lastSeenAt"]) for g in groups] == [
        ("rate_limit", 3, "1970-01-01T00:00:30.000Z"),  # as frequent as timeout, seen later
        ("timeout", 3, "1970-01-01T00:00:20.000Z"),
        ("auth_error", 3, "1970-01-01T00:00:01.000Z"),
    ]
    assert groups[1]["steps"] == [
        {"workflowName": "b", "stepKey": "y", "count": 2},
        {"workflowName": "a", "stepKey": "x", "count": 1},
    ]


def test_since_leaves_earlier_starts_out(store: Store, t: float) -> None:
    stats_sample.seed(store, t)
    document = stats_document(store, since=t + 15)  # the third, the running one and solo
    review = by_key(document["workflows"], "name")["review-flow"]
    assert (review["executions"], review["completed"], review["failed"]) == (2, 1, 0)
    assert (review["p50DurationMs"], review["parallelEfficiency"]) == (500, 0.8)
    assert by_key(document["steps"], "stepKey")["lint"]["runs"] == 1
    assert document["errors"] == []
    everything = stats_document(store, since=t - 31 * DAY)  # the old one too
    review = by_key(everything["workflows"], "name")["review-flow"]
    assert (review["executions"], review["completed"]) == (5, 3)
    assert "an old failure <n>" in [e["message"] for e in everything["errors"]]


def test_one_workflow_only(store: Store, t: float) -> None:
    stats_sample.seed(store, t)
    document = stats_document(store, since=t - DAY, workflow="other-flow")
    assert [w["name"] for w in document["workflows"]] == ["other-flow"]
    assert [s["stepKey"] for s in document["steps"]] == ["solo"]
    assert document["errors"] == []
    with pytest.raises(NotFoundError, match="no workflow named 'nope'"):
        stats_document(store, since=t - DAY, workflow="nope")


def test_an_empty_store_gives_empty_lists(store: Store, t: float) -> None:
    assert stats_document(store, since=t) == {
        "since": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)),
        "workflows": [],
        "steps": [],
        "errors": [],
    }


def test_the_critical_path_follows_the_definition_the_execution_ran(store: Store, t: float) -> None:
    """Re-storing a workflow's (name, version) with other edges rewrites its dependency
    table; an execution started before still weighs its own chain a -> b."""

    def flow(chained: bool) -> WorkflowDefinition:
        b = {
            "key": "b",
            "agent": "backend",
            "prompt": "x",
            "dependencies": ["a"] if chained else [],
        }
        steps = [{"key": "a", "agent": "backend", "prompt": "x"}, b]
        return WorkflowDefinition.model_validate({"name": "drift", "steps": steps})

    before = stats_sample.Run(store, flow(chained=True), [])
    after = stats_sample.Run(store, flow(chained=False), [])  # the same name and version
    for run, b_starts, ends in ((before, t + 1, t + 2), (after, t, t + 1)):
        run.state("executing", t)
        run.ran("a", t, t + 1)
        run.ran("b", b_starts, b_starts + 1)
        run.state("completed", ends)
    (entry,) = stats_document(store, since=t - 1)["workflows"]
    assert entry["parallelEfficiency"] == 1.0  # 2 s of 2 s, and 1 s (a or b) of 1 s


def test_figures_without_data_are_null(store: Store, t: float) -> None:
    """An execution still running: counted, but no duration, efficiency or rate yet."""
    run = stats_sample.Run(store, stats_sample.other_flow(), [])
    run.state("executing", t)
    run.write(run.steps.start("solo", t))
    document = stats_document(store, since=t - 1)
    (entry,) = document["workflows"]
    assert entry["executions"] == 1 and entry["completed"] == entry["failed"] == 0
    for figure in ("successRate", "p50DurationMs", "p95DurationMs", "parallelEfficiency"):
        assert entry[figure] is None, figure
    assert entry["checkpointOverheadMs"] is None  # no finished execution
    (step,) = document["steps"]
    assert step["runs"] == 0 and step["failureRate"] is None and step["p50DurationMs"] is None


def test_a_checkpoint_records_how_long_writing_it_took(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(
        lease, [CreateCheckpoint("executing", {"big": "x" * 100_000}, [], [], None, "user")]
    )
    (checkpoint,) = store.list_checkpoints(execution.id)
    rows = store._fetch_all(  # type: ignore[attr-defined]
        "SELECT write_ms FROM workflow_checkpoints WHERE id = ?", (checkpoint.id,)
    )
    assert rows[0][0] is not None and 0 < float(rows[0][0]) < 60_000


def _stored_critical_paths(store: Store) -> dict[str, int | None]:
    rows = store._fetch_all("SELECT id, critical_path_ms FROM workflow_executions")  # type: ignore[attr-defined]
    return {row[0]: row[1] for row in rows}


def test_the_completing_write_stores_the_critical_path(store: Store, t: float) -> None:
    """What `stats_sample` says each completed execution's longest chain weighs, stored by
    the write that completed it; the others have none."""
    seeded = stats_sample.seed(store, t)
    stored = _stored_critical_paths(store)
    assert stored[seeded.first] == 4500  # parse 1 s, scan 3 s, report 0.5 s
    assert stored[seeded.third] == 400
    assert stored[seeded.old] == 2000  # lint's two attempts of 1 s each, nothing else ran
    assert stored[seeded.solo] == 1000
    assert stored[seeded.second] is None and stored[seeded.running] is None


def test_executions_stored_before_the_critical_path_give_the_same_figures(
    store: Store, t: float
) -> None:
    """Executions completed before migration 011 have no stored critical path: the
    statistics walk their chains, to the same figures."""
    stats_sample.seed(store, t)
    stored = stats_document(store, since=t - 31 * DAY)
    with store._transaction() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE workflow_executions SET critical_path_ms = NULL")
    assert set(_stored_critical_paths(store).values()) == {None}
    walked = stats_document(store, since=t - 31 * DAY)
    assert walked == stored
    assert {w["name"]: w["parallelEfficiency"] for w in walked["workflows"]} == {
        "other-flow": 1.0, "review-flow": 0.7889  # old 2 s of 3 s, first 0.9, third 0.8
    }  # fmt: skip


@pytest.mark.postgres
def test_both_stores_give_the_same_document(tmp_path: Path, pg_url: str, t: float) -> None:
    documents = []
    for url in (str(tmp_path / "stats.db"), pg_url):
        store = open_store(url)
        try:
            stats_sample.seed(store, t)
            documents.append(stats_document(store, since=t - 31 * DAY))
        finally:
            store.close()
    assert documents[0] == documents[1]
    assert len(documents[0]["errors"]) == 4


MASK_CASES = {
    "timed out after 30000 ms": "timed out after <n> ms",
    "exit 1.5 and 2": "exit <n> and <n>",
    "execution 0f8fad5b-d9cb-469f-a165-70867728950e failed": "execution <id> failed",
    "EXECUTION 0F8FAD5B-D9CB-469F-A165-70867728950E": "EXECUTION <id>",
    "commit deadbeef12 on main": "commit <id> on main",
    "word deadbeefcafe stays": "word deadbeefcafe stays",  # no digit: a word, not an ID
    "short abc123 is a number inside a word": "short abc<n> is a number inside a word",
    "x0a1b2c3d4 is inside a word": "x<n>a<n>b<n>c<n>d<n> is inside a word",
    "item 3 (review[3]) failed": "item <n> (review[<n>]) failed",
    "v1.2.3": "v<n>.<n>",
    "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.": "sha <id>.",
    "no digits at all": "no digits at all",
    "ümlaut 42ä": "ümlaut <n>ä",
}


def test_masks_hide_ids_and_numbers() -> None:
    for message, masked in MASK_CASES.items():
        assert mask_error(message) == masked, message
    assert mask_error(None) is None


@pytest.mark.postgres
def test_postgres_masks_exactly_as_python(pg_url: str) -> None:
    """The store's own masking expression through PostgreSQL's regexp_replace gives the
    same text as the Python one SQLite calls."""
    mask_sql, mask_params = _regexp_masks("CAST(? AS TEXT)")
    store = open_store(pg_url)
    try:
        for message in MASK_CASES:
            (row,) = store._fetch_all(f"SELECT {mask_sql}", [message, *mask_params])  # type: ignore[attr-defined]
            assert row[0] == mask_error(message), message
    finally:
        store.close()


@pytest.mark.parametrize(
    ("dependencies", "run_ms", "longest"),
    [
        ({}, {}, 0),
        ({"a": []}, {"a": 7}, 7),
        ({"a": [], "b": ["a"], "c": ["b"]}, {"a": 1, "b": 2, "c": 3}, 6),  # a chain adds up
        # a diamond: the heavier branch counts, not the last one listed
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, {"a": 1, "b": 5, "c": 2, "d": 1}, 7),
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["c", "b"]}, {"a": 1, "b": 5, "c": 2, "d": 1}, 7),
        # a lone heavy step outweighs a light chain; a step that never ran weighs nothing
        ({"a": [], "b": ["a"], "x": []}, {"a": 1, "b": 1, "x": 9}, 9),
        ({"a": [], "b": ["a"]}, {"b": 4}, 4),
    ],
)
def test_longest_chain_weighs_the_heaviest_path(
    dependencies: dict[str, list[str]], run_ms: dict[str, int], longest: int
) -> None:
    assert longest_chain_ms(dependencies, run_ms) == longest
