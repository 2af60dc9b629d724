"""Workflows: upsert by (name, version), steps and edges mirrored, lookup, full-text search."""

from __future__ import annotations

import pytest

from automatosx.errors import NotFoundError
from automatosx.store.base import Store
from tests.store import sample


def _steps(store: Store, workflow_id: str) -> list[tuple[str, str, int]]:
    rows = store._fetch_all(  # type: ignore[attr-defined]
        "SELECT key, agent, position FROM workflow_steps WHERE workflow_id = ? ORDER BY position",
        (workflow_id,),
    )
    return [tuple(r) for r in rows]


def _edges(store: Store, workflow_id: str) -> set[tuple[str, str]]:
    rows = store._fetch_all(  # type: ignore[attr-defined]
        "SELECT step_key, depends_on FROM workflow_dependencies WHERE workflow_id = ?",
        (workflow_id,),
    )
    return {(r[0], r[1]) for r in rows}


def test_upsert_inserts_workflow_with_steps_and_dependencies(store: Store) -> None:
    record = sample.workflow(store)
    assert record.name == "code-review"
    assert record.version == "1.0.0"
    assert record.description == "Multi-agent code review"
    assert record.tags == ["code-review", "security"]
    assert record.definition == sample.definition().to_data()
    assert record.total_executions == 0 and record.success_rate is None
    assert _steps(store, record.id) == [
        ("parse", "backend", 0),
        ("scan", "security", 1),
        ("report", "writer", 2),
    ]
    assert _edges(store, record.id) == {("scan", "parse"), ("report", "parse"), ("report", "scan")}


def test_upsert_of_unchanged_definition_changes_nothing(store: Store) -> None:
    first = sample.workflow(store)
    again = sample.workflow(store)
    assert again == first


def test_upsert_of_changed_definition_rewrites_steps_in_place(store: Store) -> None:
    first = sample.workflow(store)
    changed = sample.definition(
        description="Smaller review",
        steps=[{"key": "only", "agent": "quality", "prompt": "Check"}],
    )
    second = store.upsert_workflow(changed)
    assert second.id == first.id
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert second.description == "Smaller review"
    assert _steps(store, second.id) == [("only", "quality", 0)]
    assert _edges(store, second.id) == set()


def test_get_workflow_by_id_and_by_name_picks_newest_version(store: Store) -> None:
    v1 = sample.workflow(store, version="1.9.0")
    v2 = sample.workflow(store, version="1.10.0")
    assert store.get_workflow(v1.id) == v1
    assert store.get_workflow("code-review").id == v2.id
    assert [(w.name, w.version) for w in store.list_workflows()] == [
        ("code-review", "1.10.0"),
        ("code-review", "1.9.0"),
    ]


def test_unknown_workflow_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no workflow named 'nope'"):
        store.get_workflow("nope")


def test_search_matches_name_description_and_tags_by_word_prefix(store: Store) -> None:
    review = sample.workflow(store)
    store.upsert_workflow(
        sample.definition("data-pipeline", description="Nightly ETL", tags=["etl", "batch"])
    )
    assert [w.id for w in store.search_workflows("review")] == [review.id]
    assert [w.name for w in store.search_workflows("securi")] == ["code-review"]
    assert [w.name for w in store.search_workflows("Nightly")] == ["data-pipeline"]
    assert [w.name for w in store.search_workflows("batch etl")] == ["data-pipeline"]
    assert store.search_workflows("multi-agent") == store.search_workflows("multi agent")
    assert store.search_workflows("review nightly") == []
    assert store.search_workflows("absent") == []
    assert store.search_workflows('"*:&|()') == []


def test_search_follows_updates(store: Store) -> None:
    sample.workflow(store)
    store.upsert_workflow(sample.definition(description="Renamed to audit", tags=[]))
    assert [w.name for w in store.search_workflows("audit")] == ["code-review"]
    assert store.search_workflows("security") == []
