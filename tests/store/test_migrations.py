"""Versioned migrations: from empty and from every earlier version, on both stores."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from automatosx.errors import AxError
from automatosx.store import open_store, postgres_connect, sqlite_file
from automatosx.store.migrate import latest_version, load_migrations, split_statements
from automatosx.store.postgres_connect import split_schema
from automatosx.views.execution import execution_document
from tests.conftest import PG_TEST_URL

WORKFLOW_ID = "wf-0000"
EXECUTION_ID = "0c0ffee0-0000-4000-8000-000000000001"


def test_migration_files_are_numbered_and_split() -> None:
    for dialect in ("sqlite", "postgres"):
        migrations = load_migrations(dialect)
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        assert all(m.statements for m in migrations)
    assert latest_version("sqlite") == latest_version("postgres")
    sqlite_trigger = "CREATE TRIGGER t AFTER INSERT ON x\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND;"
    assert split_statements(f"-- c\nSELECT 1;\n\n{sqlite_trigger}\nSELECT 3;") == (
        "SELECT 1;",
        sqlite_trigger,
        "SELECT 3;",
    )
    pg_function = "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$;"
    pg_trigger = "CREATE TRIGGER t BEFORE INSERT ON x\nFOR EACH ROW EXECUTE FUNCTION f();"
    script = f"{pg_function}\n{pg_trigger}"
    assert split_statements(script, sqlite_triggers=False) == (pg_function, pg_trigger)


def _seed(execute: Callable[[str, tuple[Any, ...]], Any]) -> None:
    """Data as a writer of that version left it: a workflow, a finished run, a checkpoint."""
    execute(
        "INSERT INTO workflows (id, name, version, description, author, tags, definition, "
        "created_at, updated_at) VALUES (?, 'legacy-flow', '1.0.0', 'Old nightly job', "
        "'dana@example.com', '[\"etl\", \"caf\\u00e9\"]', "
        '\'{"name":"legacy-flow"}\', 1.0, 1.0)',
        (WORKFLOW_ID,),
    )
    execute(
        "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
        "priority, created_at, updated_at) VALUES (?, ?, 'idle', '{}', 'cli', 0, 10.0, 10.0)",
        (EXECUTION_ID, WORKFLOW_ID),
    )
    execute(
        "UPDATE workflow_executions SET state = 'completed', started_at = 10.0, "
        "completed_at = 12.5, updated_at = 12.5 WHERE id = ?",
        (EXECUTION_ID,),
    )
    execute(
        "INSERT INTO workflow_checkpoints (id, execution_id, state, context, completed_steps, "
        "pending_steps, created_by, created_at) VALUES ('cp-1', ?, 'executing', '{}', '[]', "
        "'[\"a\"]', 'automatic', 11.0)",
        (EXECUTION_ID,),
    )


def _check_upgraded(url: str) -> None:
    with open_store(url) as store:  # type: ignore[attr-defined]
        workflow = store.get_workflow("legacy-flow")
        assert (workflow.id, workflow.description) == (WORKFLOW_ID, "Old nightly job")
        execution = store.get_execution(EXECUTION_ID[:8])
        assert execution.state == "completed" and execution.duration_ms == 2500
        seeded = (workflow.total_executions, workflow.successful_executions)
        assert seeded == (1, 1)  # statistics backfilled by version 2
        assert workflow.avg_duration_ms == pytest.approx(2500.0)
        [checkpoint] = store.list_checkpoints(EXECUTION_ID)
        assert checkpoint.size_bytes == len("executing{}[]") + len('["a"]')
        assert [w.id for w in store.search_workflows("nightly")] == [WORKFLOW_ID]  # version 3
        assert [w.id for w in store.search_workflows("etl")] == [WORKFLOW_ID]
        assert [w.id for w in store.search_workflows("café")] == [WORKFLOW_ID]  # JSON-escaped
        assert [w.id for w in store.search_workflows("dana example")] == [WORKFLOW_ID]  # 7


def _sqlite_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_sqlite_from_empty(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with open_store(str(path)):  # type: ignore[attr-defined]
        pass
    assert _sqlite_versions(path) == list(range(1, latest_version("sqlite") + 1))
    with open_store(str(path)):  # type: ignore[attr-defined]
        pass  # reopening changes nothing
    assert _sqlite_versions(path) == list(range(1, latest_version("sqlite") + 1))


@pytest.mark.parametrize("start", range(1, latest_version("sqlite")))
def test_sqlite_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    path = tmp_path / f"v{start}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert sqlite_file.migrate(conn, target=start) == start
    _seed(lambda sql, params: conn.execute(sql, params))
    conn.close()
    _check_upgraded(str(path))
    assert _sqlite_versions(path) == list(range(1, latest_version("sqlite") + 1))


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with open_store(str(path)):  # type: ignore[attr-defined]
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', ?)", (time.time(),))
    with pytest.raises(AxError, match="newer than this ax"):
        open_store(str(path))


def _pg_versions(pg_schema: str) -> list[int]:
    with psycopg.connect(PG_TEST_URL) as conn:
        rows = conn.execute(f'SELECT version FROM "{pg_schema}".schema_version ORDER BY 1')
        return [r[0] for r in rows.fetchall()]


@pytest.mark.postgres
def test_postgres_from_empty(pg_url: str, pg_schema: str) -> None:
    with open_store(pg_url):  # type: ignore[attr-defined]
        pass
    with open_store(pg_url):  # type: ignore[attr-defined]
        pass
    assert _pg_versions(pg_schema) == list(range(1, latest_version("postgres") + 1))


@pytest.mark.postgres
@pytest.mark.parametrize("start", range(1, latest_version("postgres")))
def test_postgres_from_every_earlier_version(pg_url: str, pg_schema: str, start: int) -> None:
    conninfo, schema = split_schema(pg_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        postgres_connect.configure(conn, schema)
        assert postgres_connect.migrate(conn, target=start) == start
        _seed(lambda sql, params: conn.execute(sql.replace("?", "%s"), params))
    _check_upgraded(pg_url)
    assert _pg_versions(pg_schema) == list(range(1, latest_version("postgres") + 1))


@pytest.mark.postgres
def test_postgres_schema_from_url_options_is_created(pg_schema: str) -> None:
    nested = f"{pg_schema}_opt"
    url = f"{PG_TEST_URL}?options=-csearch_path%3D{nested}"
    try:
        with open_store(url) as store:  # type: ignore[attr-defined]
            assert store.schema == nested
            assert store.list_workflows() == []
        with psycopg.connect(PG_TEST_URL) as conn:
            found = conn.execute(f"SELECT to_regclass('{nested}.workflows')").fetchone()
            assert found is not None and found[0] is not None
    finally:
        with psycopg.connect(PG_TEST_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{nested}" CASCADE')


def test_postgres_url_parsing() -> None:
    assert split_schema("postgresql://u@h/db?schema=abc&sslmode=disable") == (
        "postgresql://u@h/db?sslmode=disable",
        "abc",
    )
    assert split_schema("postgresql://u@h/db")[1] is None
    with pytest.raises(AxError, match="invalid PostgreSQL schema"):
        split_schema("postgresql://u@h/db?schema=a;drop")


@pytest.mark.postgres
def test_pooled_connections_keep_alive_unless_the_url_says_otherwise(pg_url: str) -> None:
    """A server that vanished without a word is given up in about 30 s, not 15 minutes."""
    for url, idle in ((pg_url, "10"), (f"{pg_url}&keepalives_idle=60", "60")):
        store = open_store(url)
        try:
            with store._pool.connection() as conn:  # type: ignore[attr-defined]
                settings = conn.info.get_parameters()
        finally:
            store.close()
        assert (settings["keepalives_idle"], settings["tcp_user_timeout"]) == (idle, "30000")
        assert (settings["keepalives_interval"], settings["keepalives_count"]) == ("5", "3")


def test_unreachable_postgres_is_one_clear_error() -> None:
    with pytest.raises(AxError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


LEGACY_DEFINITION = {
    "name": "legacy-flow",
    "config": {"maxRetries": 0},
    "steps": [
        {"key": "done", "agent": "a", "prompt": "x"},
        {"key": "backoff", "agent": "a", "prompt": "x", "retryPolicy": {"maxRetries": 2}},
        {"key": "final", "agent": "a", "prompt": "x"},
        {"key": "opt", "agent": "a", "prompt": "x", "optional": True},
        {"key": "mid", "agent": "a", "prompt": "x"},
        {"key": "skip", "agent": "a", "prompt": "x", "dependencies": ["final"]},
        {"key": "never", "agent": "a", "prompt": "x"},
    ],
}
ATTEMPT = (
    "INSERT INTO workflow_step_executions (execution_id, step_key, attempt, state, agent, "
    "provider, output, error_kind, error_message, started_at, completed_at, duration_ms, "
    "tokens_in) VALUES (?, ?, ?, ?, 'a', 'command', ?, ?, ?, ?, ?, ?, ?)"
)
PAUSED_ID = "0c0ffee0-0000-4000-8000-000000000002"
FAILED_ID = "0c0ffee0-0000-4000-8000-000000000003"


def _seed_step_rows(execute: Callable[[str, tuple[Any, ...]], Any]) -> None:
    """Two executions as version 5 stored them: attempt rows only (a paused one in the
    middle of everything, a failed one), each with its copy of the definition."""
    definition = json.dumps(LEGACY_DEFINITION)
    execute(
        "INSERT INTO workflows (id, name, version, definition, created_at, updated_at) "
        "VALUES (?, 'legacy-flow', '1.0.0', ?, 1.0, 1.0)",
        (WORKFLOW_ID, definition),
    )
    for execution_id, state in ((PAUSED_ID, "paused"), (FAILED_ID, "failed")):
        execute(
            "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
            "priority, created_at, updated_at, definition) "
            "VALUES (?, ?, ?, '{}', 'cli', 0, 10.0, 10.0, ?)",
            (execution_id, WORKFLOW_ID, state, definition),
        )
    rows = [
        ("done", 1, "failed", None, "timeout", "slow", 1.0, 2.0, 1000, 5),
        ("done", 2, "completed", '{"n": 2}', None, None, 3.0, 3.5, 500, 7),
        ("backoff", 1, "failed", None, "rate_limit", "429", 1.0, 1.2, 200, None),
        ("final", 1, "failed", None, "provider_error", "boom", 1.0, 1.1, 100, None),
        ("opt", 1, "failed", None, "provider_error", "meh", 1.0, 1.1, 100, None),
        ("mid", 1, "running", None, None, None, 4.0, None, None, None),
        ("skip", 1, "skipped", None, None, "upstream step 'final' failed", None, 1.1, None, None),
    ]
    for row in rows:
        execute(ATTEMPT, (PAUSED_ID, *row))
    execute(ATTEMPT, (FAILED_ID, "done", 1, "completed", '"ok"', None, None, 1.0, 2.0, 1000, 3))


def _check_instances(url: str) -> None:
    with open_store(url) as store:  # type: ignore[attr-defined]
        paused = {i.key: i for i in store.list_instances(PAUSED_ID)}
        assert list(paused) == [s["key"] for s in LEGACY_DEFINITION["steps"]]
        assert {k: i.state for k, i in paused.items()} == {
            "done": "completed", "backoff": "pending", "final": "failed", "opt": "failed",
            "mid": "running", "skip": "skipped", "never": "pending",
        }  # fmt: skip
        done = paused["done"]
        assert (done.attempt, done.failures, done.output, done.tokens_in) == (2, 1, {"n": 2}, 7)
        assert (paused["backoff"].attempt, paused["backoff"].failures) == (1, 1)
        assert paused["never"].attempt == 0 and paused["never"].agent == "a"
        attempts = [(a.step_key, a.attempt, a.state) for a in store.list_step_executions(PAUSED_ID)]
        assert attempts.count(("done", 2, "completed")) == 1  # listed once
        document = execution_document(store, store.get_execution(PAUSED_ID))
        assert document["steps"]["done"]["tokensIn"] == 12  # both attempts' usage
        assert document["stepResults"] == {"done": {"n": 2}}
        failed = {i.key: i.state for i in store.list_instances(FAILED_ID)}
        assert failed["done"] == "completed"
        assert {failed[k] for k in failed if k != "done"} == {"cancelled"}  # never started


def test_sqlite_step_rows_become_instances(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert sqlite_file.migrate(conn, target=5) == 5
    _seed_step_rows(lambda sql, params: conn.execute(sql, params))
    conn.close()
    _check_instances(str(path))


@pytest.mark.postgres
def test_postgres_step_rows_become_instances(pg_url: str) -> None:
    conninfo, schema = split_schema(pg_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        postgres_connect.configure(conn, schema)
        assert postgres_connect.migrate(conn, target=5) == 5
        _seed_step_rows(lambda sql, params: conn.execute(sql.replace("?", "%s"), params))
    _check_instances(pg_url)
