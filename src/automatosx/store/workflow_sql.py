"""Storing workflow definitions: the `workflows` row plus its steps and dependency edges.

A definition is keyed by (name, version). Upserting an unchanged definition touches nothing,
so `ax workflow run` of the same file does not churn rows or `updated_at`; a changed one
rewrites its steps and edges so the tables always mirror the stored definition.
"""

from __future__ import annotations

import difflib
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from automatosx.secrets import MASK, declared_names, is_secret_name, reference_name
from automatosx.store.codec import ColumnCodec
from automatosx.store.records import WorkflowRecord
from automatosx.store.rows import WORKFLOW_COLUMNS, workflow_from_row
from automatosx.store.write_ops import Connection

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition

UPSERT_WORKFLOW = (
    "INSERT INTO workflows (id, name, version, description, author, tags, definition, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (name, version) DO UPDATE SET description = excluded.description, "
    "author = excluded.author, tags = excluded.tags, definition = excluded.definition, "
    "updated_at = excluded.updated_at RETURNING id"
)
INSERT_STEP = (
    "INSERT INTO workflow_steps (workflow_id, key, position, agent, prompt, parallel, optional, "
    "timeout_ms, retry_policy, output_schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DEPENDENCY = (
    "INSERT INTO workflow_dependencies (workflow_id, step_key, depends_on) VALUES (?, ?, ?)"
)
SELECT_WORKFLOW = f"SELECT {WORKFLOW_COLUMNS} FROM workflows w"


def stored_form(definition: WorkflowDefinition) -> dict[str, Any]:
    """The definition as it is stored (and copied into each execution): the file form with
    every literal value of an inline agent's `env` under a secret-looking name masked.
    `${NAME}` references stay: they are names, not values (SPEC section 4)."""
    data = definition.to_data()
    declared = declared_names()
    for agent in data.get("agents", {}).values():
        env = agent.get("env")
        if env:
            agent["env"] = {
                name: value
                if reference_name(value) is not None or not is_secret_name(name, declared)
                else MASK
                for name, value in env.items()
            }
    return data


def upsert_workflow(
    db: Connection, definition: WorkflowDefinition, codec: ColumnCodec
) -> WorkflowRecord:
    definition_text = codec.json(stored_form(definition))
    row = db.execute(
        "SELECT id, definition FROM workflows WHERE name = ? AND version = ?",
        (definition.name, definition.version),
    ).fetchone()
    if row is not None and row[1] == definition_text:
        workflow_id: str = row[0]
    else:
        now = time.time()
        workflow_id = db.execute(
            UPSERT_WORKFLOW,
            (
                str(uuid.uuid4()), definition.name, definition.version,
                codec.text(definition.description), codec.text(definition.author),
                codec.json(definition.tags), definition_text, now, now,
            ),
        ).fetchall()[0][0]  # fmt: skip
        _rewrite_steps(db, workflow_id, definition, codec)
    found = db.execute(f"{SELECT_WORKFLOW} WHERE w.id = ?", (workflow_id,)).fetchone()
    return workflow_from_row(found)


def _rewrite_steps(
    db: Connection, workflow_id: str, definition: WorkflowDefinition, codec: ColumnCodec
) -> None:
    db.execute("DELETE FROM workflow_steps WHERE workflow_id = ?", (workflow_id,))
    keys = {step.key for step in definition.steps}
    for position, step in enumerate(definition.steps):
        retry: Any = step.retry_policy
        db.execute(
            INSERT_STEP,
            (
                workflow_id, step.key, position, step.does, codec.text(step.prompt or ""),
                step.parallel, step.optional, step.timeout_ms,
                None if retry is None else codec.json(retry.model_dump(mode="json", by_alias=True)),
                None if step.output_schema is None else codec.json(step.output_schema),
            ),
        )  # fmt: skip
    for step in definition.steps:
        for dependency in dict.fromkeys(step.dependencies):
            if dependency in keys:
                db.execute(INSERT_DEPENDENCY, (workflow_id, step.key, dependency))


def version_order(record: WorkflowRecord) -> tuple[tuple[int, ...], float]:
    """Sort key for "newest version": numeric parts of the version, then last update."""
    return tuple(int(part) for part in re.findall(r"\d+", record.version)), record.updated_at


def closest_name_hint(name: str, names: list[str]) -> str:
    """` (did you mean 'x'?)` with the stored name closest to `name` (case aside), or ""."""
    by_lower = {stored.lower(): stored for stored in names}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def search_words(query: str) -> list[str]:
    """The words of a search query, lowercased (punctuation and `_` separate words, as both
    stores' tokenizers do)."""
    return [word.lower() for word in re.findall(r"[^\W_]+", query)]
