"""Migration 010 (each attempt's rendered prompt) on a database written before it, on both
stores: the attempts stored then read back with a null prompt, and the upgraded database
stores the prompts of the attempts that follow."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from automatosx.store import open_store, postgres_connect, sqlite_file
from automatosx.store.migrate import load_migrations
from automatosx.store.postgres_connect import split_schema
from automatosx.views.attempts import attempts_document
from tests.store import sample
from tests.store.steps import Steps

EXECUTION_ID = "0c0ffee0-0000-4000-8000-00000000a010"


def _before_prompts(dialect: str) -> int:
    """The version just before the one that adds the prompt columns."""
    return next(m.version for m in load_migrations(dialect) if m.name == "attempt_prompts") - 1


def _seed(execute: Callable[[str, tuple[Any, ...]], Any]) -> None:
    """A step that failed once and then completed, as a writer without prompts left it: its
    first attempt in the history, its second on the instance row."""
    execute(
        "INSERT INTO workflows (id, name, version, definition, created_at, updated_at) "
        "VALUES ('wf-old', 'old-flow', '1.0.0', '{}', 1.0, 1.0)",
        (),
    )
    execute(
        "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
        "priority, created_at, updated_at) VALUES (?, 'wf-old', 'completed', '{}', 'cli', 0, "
        "1.0, 1.0)",
        (EXECUTION_ID,),
    )
    execute(
        "INSERT INTO workflow_step_instances (execution_id, key, step_key, position, state, "
        "attempt, failures, agent, provider, output, started_at, completed_at, duration_ms) "
        "VALUES (?, 'draft', 'draft', 0, 'completed', 2, 1, 'writer', 'command', '\"done\"', "
        "3.0, 4.0, 1000)",
        (EXECUTION_ID,),
    )
    execute(
        "INSERT INTO workflow_step_executions (execution_id, step_key, attempt, state, agent, "
        "provider, error_kind, error_message, started_at, completed_at, duration_ms) "
        "VALUES (?, 'draft', 1, 'failed', 'writer', 'command', 'timeout', 'slow', 1.0, 2.0, 1000)",
        (EXECUTION_ID,),
    )


def _check_upgraded(url: str) -> None:
    with open_store(url) as store:  # type: ignore[attr-defined]
        [instance] = store.list_instances(EXECUTION_ID)
        assert instance.prompt is None
        first, second = store.list_step_executions(EXECUTION_ID)
        assert (first.attempt, first.prompt, second.attempt, second.prompt) == (1, None, 2, None)
        document = attempts_document(store, store.get_execution(EXECUTION_ID), "draft")
        assert [(a["attempt"], a["state"], a["prompt"], a["output"]) for a in document] == [
            (1, "failed", None, None),
            (2, "completed", None, "done"),
        ]
        assert document[0]["error"] == "timeout: slow"
        definition = sample.definition()  # the upgraded database keeps the next prompts
        execution, lease = sample.execution(store, store.upsert_workflow(definition).id)
        steps = Steps(execution.id, definition)
        store.write(lease, [*steps.created(), *steps.start("parse", 5.0, prompt="Parse x.py")])
        assert store.list_instances(execution.id)[0].prompt == "Parse x.py"


def test_sqlite_attempts_stored_before_prompts_read_none(tmp_path: Path) -> None:
    path = tmp_path / "before-prompts.db"
    conn = sqlite3.connect(path, isolation_level=None)
    target = _before_prompts("sqlite")
    assert sqlite_file.migrate(conn, target=target) == target
    _seed(lambda sql, params: conn.execute(sql, params))
    conn.close()
    _check_upgraded(str(path))


@pytest.mark.postgres
def test_postgres_attempts_stored_before_prompts_read_none(pg_url: str) -> None:
    conninfo, schema = split_schema(pg_url)
    target = _before_prompts("postgres")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        postgres_connect.configure(conn, schema)
        assert postgres_connect.migrate(conn, target=target) == target
        _seed(lambda sql, params: conn.execute(sql.replace("?", "%s"), params))
    _check_upgraded(pg_url)
