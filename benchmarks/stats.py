"""What `ax workflow stats` costs on a store after months of use: 10,000 executions of five
workflows over the last six days, each a diamond of four steps whose one branch is a
forEach of one item (50,000 step instances, 40,000 of them runs), with retried and failed
attempts (about 4,000), a checkpoint each and 100,000 events (ten an execution, as four
steps write them; each run keeps a 2 KB output and a 750-byte prompt, as agents' answers
are), and the critical path the completing write stores (by the store's own
function), inserted with direct SQL in a few seconds (running 10,000 workflows
would take minutes and measure the engine, not the queries).

    python benchmarks/stats.py [--executions 10000] [--events 100000]

Prints one JSON line: the seeded counts, the median time of the statistics in-process
(`stats_document`: the store's queries and the document) and of `ax workflow stats
--format json` (start-up included). The target (SPEC issue 16): under 500 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_ax

WORKFLOWS = 5
STEPS = ("plan", "build", "review", "ship")  # plan -> build, review -> ship
ITEMS = 1  # review is a forEach of this many items
ERRORS = (
    ("timeout", "step {key} timed out after {n} ms"),
    ("rate_limit", "rate limited: retry in {n} s (request {uuid})"),
    ("provider_error", "python exited with code {n}: connection reset by {hex}"),
)


def definition(name: str) -> dict[str, Any]:
    def step(key: str, deps: list[str], **extra: Any) -> dict[str, Any]:
        return {"key": key, "agent": "backend", "prompt": key, "dependencies": deps, **extra}

    return {
        "name": name,
        "steps": [
            step("plan", []),
            step("build", ["plan"], retryPolicy={"maxRetries": 2}),
            step("review", ["plan"], forEach={"items": "context.files", "as": "file"}),
            step("ship", ["build", "review"]),
        ],
    }


def seed(db: Path, executions: int, events: int, seed_value: int = 16) -> dict[str, int]:
    """A migrated store at `db` (made by the store itself), then every row by SQL."""
    from automatosx.definition.models import WorkflowDefinition
    from automatosx.store import open_store
    from automatosx.store.records import RecordCriticalPath
    from automatosx.store.write_ops import record_critical_path

    store = open_store(str(db))
    try:
        workflows = [
            store.upsert_workflow(WorkflowDefinition.model_validate(definition(f"flow-{i}")))
            for i in range(WORKFLOWS)
        ]
    finally:
        store.close()
    rng = random.Random(seed_value)
    now = time.time()
    rows: dict[str, list[tuple[Any, ...]]] = {
        "executions": [], "instances": [], "attempts": [], "events": [], "checkpoints": [],
    }  # fmt: skip
    events_each = events // executions
    for n in range(executions):
        workflow = workflows[n % WORKFLOWS]
        eid = str(uuid.UUID(int=rng.getrandbits(128)))
        started = now - rng.uniform(60, 6 * 86400)
        state = rng.choices(("completed", "failed", "cancelled"), (85, 10, 5))[0]
        clock = _Clock(rng, started)
        _instances(rows, rng, eid, clock, failed=state != "completed")
        ended = clock.latest + rng.uniform(0.001, 0.05)
        duration = round((ended - started) * 1000)
        rows["executions"].append(
            (eid, workflow.id, state, started, started, ended, duration, ended)
        )
        rows["checkpoints"].append((str(uuid.uuid4()), eid, started + 0.1, rng.uniform(0.05, 2)))
        for i in range(events_each):
            rows["events"].append((eid, "step_started", STEPS[i % 4], started + i * 0.001))
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
                "priority, created_at, started_at, completed_at, duration_ms, updated_at, "
                "definition) VALUES (?, ?, ?, '{}', 'bench', 0, ?, ?, ?, ?, ?, "
                "(SELECT definition FROM workflows WHERE id = ?))",
                [(*row, row[1]) for row in rows["executions"]],
            )
            conn.executemany(
                "INSERT INTO workflow_step_instances (execution_id, key, step_key, position, "
                "state, parent_key, item_index, attempt, failures, agent, provider, error_kind, "
                "error_message, started_at, completed_at, duration_ms, tokens_in, tokens_out, "
                "cost_usd, items, output, prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'backend', "
                "'command', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows["instances"],
            )
            conn.executemany(
                "INSERT INTO workflow_step_executions (execution_id, step_key, attempt, state, "
                "agent, provider, error_kind, error_message, started_at, completed_at, "
                "duration_ms) VALUES (?, ?, ?, 'failed', 'backend', 'command', ?, ?, ?, ?, ?)",
                rows["attempts"],
            )
            conn.executemany(
                "INSERT INTO workflow_events (execution_id, type, step_key, data, created_at) "
                "VALUES (?, ?, ?, '{}', ?)",
                rows["events"],
            )
            conn.executemany(
                "INSERT INTO workflow_checkpoints (id, execution_id, state, created_by, "
                "created_at, write_ms) VALUES (?, ?, 'executing', 'automatic', ?, ?)",
                rows["checkpoints"],
            )
            steps = definition("")["steps"]
            graph = RecordCriticalPath({step["key"]: step["dependencies"] for step in steps})
            for eid, _workflow, state, *_rest in rows["executions"]:
                if state == "completed":  # as the write that completes it stores it
                    record_critical_path(conn, eid, graph)
    finally:
        conn.close()
    return {name: len(found) for name, found in rows.items()}


class _Clock:
    """Start and end times of an execution's steps, each after what it depends on."""

    def __init__(self, rng: random.Random, started: float) -> None:
        self.rng = rng
        self.started = started
        self.latest = started

    def span(self, after: float, seconds: tuple[float, float]) -> tuple[float, float]:
        start = after + self.rng.uniform(0.0005, 0.005)
        end = start + self.rng.uniform(*seconds)
        self.latest = max(self.latest, end)
        return start, end


def _instances(
    rows: dict[str, list[tuple[Any, ...]]],
    rng: random.Random,
    eid: str,
    clock: _Clock,
    *,
    failed: bool,
) -> None:
    """The execution's instances (and the history rows of their failed attempts)."""
    plan = _step(rows, rng, eid, clock, "plan", 0, clock.started, None)
    build = _step(rows, rng, eid, clock, "build", 1, plan, None, retry=0.2, fail=failed)
    last = plan  # the forEach fans out when plan ends; its span ends with its last item
    for index in range(ITEMS):
        last = max(last, _step(rows, rng, eid, clock, "review", 2, plan, index, retry=0.2))
    rows["instances"].append(
        (eid, "review", "review", 2, "completed", None, None, 0, 0, None, None, plan, last,
         round((last - plan) * 1000), None, None, None, json.dumps(list(range(ITEMS))), None,
         None)
    )  # fmt: skip
    if failed:  # build failed for good: ship never started
        rows["instances"].append(
            (eid, "ship", "ship", 3, "cancelled", None, None, 0, 0, "cancelled",
             "not started: workflow failed", None, clock.latest, None, None, None, None, None,
             None, None)
        )  # fmt: skip
    else:
        _step(rows, rng, eid, clock, "ship", 3, max(build, last), None)


def _step(
    rows: dict[str, list[tuple[Any, ...]]],
    rng: random.Random,
    eid: str,
    clock: _Clock,
    step_key: str,
    position: int,
    after: float,
    index: int | None,
    *,
    retry: float = 0.0,
    fail: bool = False,
) -> float:
    key = step_key if index is None else f"{step_key}[{index}]"
    attempt = 1
    while rng.random() < retry and attempt < 3:  # failed attempts before the latest
        start, end = clock.span(after, (0.05, 0.5))
        rows["attempts"].append(
            (eid, key, attempt, *_error(rng, step_key), start, end, round((end - start) * 1000))
        )
        after, attempt = end, attempt + 1
    start, end = clock.span(after, (0.05, 2.0))
    state, kind, message = "completed", None, None
    if fail:
        state, (kind, message) = "failed", _error(rng, step_key)
    cost = round(rng.uniform(0.0001, 0.01), 6)
    rows["instances"].append(
        (eid, key, step_key, position, state, None if index is None else step_key, index,
         attempt, attempt - (state == "completed"), kind, message, start, end,
         round((end - start) * 1000), rng.randint(100, 2000), rng.randint(10, 500), cost, None,
         None if fail else _OUTPUT, _PROMPT)
    )  # fmt: skip
    return end


# What an agent step keeps (as the engine stores them): its answer and its rendered prompt,
# of a size models give; the statistics read none of it, but they read rows that hold it.
_OUTPUT = json.dumps("The change looks right. " * 80)  # about 2 KB
_PROMPT = "Review this change for correctness and tests. " * 16  # about 750 bytes


def _error(rng: random.Random, key: str) -> tuple[str, str]:
    kind, template = rng.choice(ERRORS)
    message = template.format(
        key=key, n=rng.randint(1, 30_000), uuid=uuid.UUID(int=rng.getrandbits(128)),
        hex=f"{rng.getrandbits(48):012x}",
    )  # fmt: skip
    return kind, message


def measure(executions: int = 10_000, events: int = 100_000, repeat: int = 5) -> dict[str, Any]:
    from automatosx.store import open_store
    from automatosx.views.stats import stats_document

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "stats.db"
        counts = seed(db, executions, events)
        store = open_store(str(db))
        try:
            since = time.time() - 7 * 86400
            document = stats_document(store, since=since)  # warm: the page cache, as a reader's
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                stats_document(store, since=since)
                times.append(time.perf_counter() - start)
        finally:
            store.close()
        cli = [run_ax(["workflow", "stats", "--format", "json"], db=db) for _ in range(3)]
    for done in cli:
        if done.returncode != 0 or done.document is None:
            raise RuntimeError(f"ax workflow stats exited {done.returncode}: {done.stderr[-500:]}")
    seen = sum(w["executions"] for w in document["workflows"])
    if seen != executions:
        raise RuntimeError(f"the statistics saw {seen} executions of {executions}")
    return {
        **counts,
        "stats_query_ms": round(statistics.median(times) * 1000, 1),
        "stats_json_s": round(statistics.median(run.wall_s for run in cli), 3),
        "error_groups": len(document["errors"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    options = parser.parse_args()
    print(json.dumps(measure(options.executions, options.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
