"""`ax workflow list --search TEXT` and `ax workflow show NAME [--version V]`, run as a user
would, on SQLite (FTS5) and on PostgreSQL (full-text search): the same answers from both.

Workflows are stored through the store API (as `ax workflow run` stores them) into the
`AX_DB` the CLI reads; the round trip of `show` stores its workflow with a real run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from automatosx.definition.models import WorkflowDefinition
from automatosx.store.base import Store
from tests.conftest import AxResult, RunAx
from tests.store import sample

WORKFLOWS: list[dict[str, Any]] = [
    {
        "name": "code-review",
        "description": "Reviews pull requests for security and compliance problems",
        "tags": ["quality", "python"],
        "author": "alice@example.com",
    },
    {
        "name": "data-pipeline",
        "description": "Nightly ETL of the sales warehouse",
        "tags": ["etl", "batch"],
        "author": "Bob Stone",
    },
    {
        "name": "security-audit",
        "description": "Audits dependencies",
        "tags": ["compliance"],
        "author": "carol",
    },
]


@pytest.fixture
def env(store_url: str) -> dict[str, str]:
    return {"AX_DB": store_url}


@pytest.fixture
def stored(store: Store) -> None:
    for fields in WORKFLOWS:
        store.upsert_workflow(sample.definition(**fields))


def _search(run_ax: RunAx, env: dict[str, str], text: str) -> list[str]:
    result = run_ax("workflow", "list", "--search", text, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [entry["name"] for entry in json.loads(result.stdout)]


def _one_error(result: AxResult) -> str:
    result.assert_clean_error(2)
    assert result.stdout == ""
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    return line


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("pipeline", ["data-pipeline"]),  # a word of the name
        ("warehouse", ["data-pipeline"]),  # of the description
        ("python", ["code-review"]),  # a tag
        ("alice", ["code-review"]),  # the author, an e-mail address
        ("example.com", ["code-review"]),
        ("stone", ["data-pipeline"]),
        ("NIGHTLY", ["data-pipeline"]),  # case does not matter
        ("nightly sales", ["data-pipeline"]),  # several words: all must match
        ("audit carol", ["security-audit"]),
        ("nightly security", []),
        ("ware", ["data-pipeline"]),  # each word matches the start of a word
        ("pipe nigh", ["data-pipeline"]),
        ("ipeline", []),  # ... and only the start
        ("nothing-like-this", []),
    ],
)
def test_search_matches_name_description_tags_and_author(
    run_ax: RunAx, env: dict[str, str], text: str, names: list[str]
) -> None:
    assert _search(run_ax, env, text) == names


@pytest.mark.usefixtures("stored")
def test_search_ranks_a_match_in_the_name_first(run_ax: RunAx, env: dict[str, str]) -> None:
    # `security` is in security-audit's name and in code-review's description: the name
    # counts more, whatever the alphabetical order.
    assert _search(run_ax, env, "security") == ["security-audit", "code-review"]
    # a tag (security-audit's) counts more than the description (code-review's)
    assert _search(run_ax, env, "compliance") == ["security-audit", "code-review"]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('"', []),
        ("*", []),
        ("NEAR(", []),
        ("-", []),
        ("", []),
        ("'; DROP TABLE workflows; --", []),
        ('"review', ["code-review"]),
        ("review*", ["code-review"]),
        ("-security", ["security-audit", "code-review"]),  # not a NOT
        ("security NOT audit", []),  # NOT is a word like any other
        ("NEAR(security audit)", []),
        ("etl OR python", []),
        ("security:* & !audit | x", []),
        ("data^pipeline", ["data-pipeline"]),
        ("(nightly) {sales}", ["data-pipeline"]),
        ("x" * 3000, []),
    ],
)
def test_hostile_search_text_is_words_never_syntax(
    run_ax: RunAx, env: dict[str, str], store: Store, text: str, names: list[str]
) -> None:
    assert _search(run_ax, env, text) == names
    assert len(store.list_workflows()) == len(WORKFLOWS)


@pytest.mark.usefixtures("stored")
def test_search_table_shows_only_matches(run_ax: RunAx, env: dict[str, str]) -> None:
    result = run_ax("workflow", "list", "--search", "etl", env=env)
    assert result.returncode == 0, result.stderr
    assert "data-pipeline" in result.stdout
    assert "code-review" not in result.stdout and "security-audit" not in result.stdout
    none = run_ax("workflow", "list", "--search", "zebra", env=env)
    assert none.returncode == 0
    assert none.stdout == ""
    assert "No stored workflow matches 'zebra'" in none.stderr


def test_search_follows_a_changed_author(run_ax: RunAx, env: dict[str, str], store: Store) -> None:
    store.upsert_workflow(sample.definition(author="dana"))
    assert _search(run_ax, env, "dana") == ["code-review"]
    store.upsert_workflow(sample.definition(author="erin"))
    assert _search(run_ax, env, "dana") == []
    assert _search(run_ax, env, "erin") == ["code-review"]


ESC_DESCRIPTION = "Reviews \x1b[31mred\x1b[0m text \u202eeverywhere"


def test_show_round_trips_a_run_workflow(
    run_ax: RunAx, env: dict[str, str], tmp_path: Path
) -> None:
    source = {
        "name": "greeter",
        "version": "2.1.0",
        "description": ESC_DESCRIPTION,
        "author": "alice",
        "tags": ["demo"],
        "agents": {
            "say": {
                "provider": "command",
                "command": ["echo", "hi"],
                "env": {"SERVICE_TOKEN": "s3cr3t-value", "GREETING": "hello", "API_KEY": "${K}"},
            }
        },
        "steps": [
            {"key": "a", "agent": "say", "prompt": "Say hi\nto {{who}}"},
            {"key": "b", "agent": "say", "prompt": "x", "dependencies": ["a"]},
        ],
    }
    (tmp_path / "greeter.yaml").write_text(yaml.safe_dump(source))
    ran = run_ax(
        "workflow", "run", "greeter.yaml", "--context", '{"who": "you"}', env={**env, "K": "v"}
    )
    assert ran.returncode == 0, ran.stderr

    shown = run_ax("workflow", "show", "greeter", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    assert "s3cr3t-value" not in shown.stdout
    loaded = yaml.safe_load(shown.stdout)
    assert list(loaded)[:2] == ["name", "version"] and loaded["version"] == "2.1.0"
    expected = dict(source)
    expected["agents"] = {
        "say": {**source["agents"]["say"], "env": {**source["agents"]["say"]["env"]}}
    }
    expected["agents"]["say"]["env"]["SERVICE_TOKEN"] = "***"  # masked when stored
    assert (
        WorkflowDefinition.model_validate(loaded).to_data()
        == WorkflowDefinition.model_validate(expected).to_data()
    )
    (tmp_path / "shown.yaml").write_text(shown.stdout)
    shell = {**env, "K": "v", "SERVICE_TOKEN": "from-the-shell"}
    validated = run_ax("workflow", "validate", "shown.yaml", env=shell)
    assert validated.returncode == 0, validated.stderr
    # the masked value is not a value: without it in the shell, validate says where it goes
    masked = run_ax("workflow", "validate", "shown.yaml", env={**env, "K": "v"})
    assert "SERVICE_TOKEN held a literal secret" in _one_error(masked)


def test_show_picks_the_newest_version_or_the_one_asked(
    run_ax: RunAx, env: dict[str, str], store: Store
) -> None:
    store.upsert_workflow(sample.definition(version="1.9.0", description="older"))
    store.upsert_workflow(sample.definition(version="1.10.0", description="newer"))
    newest = run_ax("workflow", "show", "code-review", env=env)
    assert newest.returncode == 0, newest.stderr
    assert yaml.safe_load(newest.stdout)["description"] == "newer"  # 1.10 is after 1.9
    older = run_ax("workflow", "show", "code-review", "--version", "1.9.0", env=env)
    assert older.returncode == 0, older.stderr
    shown = yaml.safe_load(older.stdout)
    assert (shown["version"], shown["description"]) == ("1.9.0", "older")
    assert shown["steps"] == sample.definition().to_data()["steps"]
    line = _one_error(run_ax("workflow", "show", "code-review", "--version", "1.9", env=env))
    assert line == "error: workflow 'code-review' has no version '1.9' (stored: 1.9.0, 1.10.0)"


@pytest.mark.usefixtures("stored")
def test_show_of_an_unknown_name_suggests_a_stored_one(run_ax: RunAx, env: dict[str, str]) -> None:
    line = _one_error(run_ax("workflow", "show", "data-pipelin", env=env))
    assert line == "error: no workflow named 'data-pipelin' (did you mean 'data-pipeline'?)"
    line = _one_error(run_ax("workflow", "show", "Code-Review", env=env))
    assert line.endswith("(did you mean 'code-review'?)")
    line = _one_error(run_ax("workflow", "show", "zzzz", env=env))
    assert line == "error: no workflow named 'zzzz'"
