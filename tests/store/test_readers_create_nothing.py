"""A command that only reads (or acts on an execution that must already exist) never creates
a database: typed in an empty directory, it answers as for a new store and leaves nothing
behind (SPEC section 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunAx

UNKNOWN_ID = "0123456789abcdef"

EMPTY_LISTS = [
    ["workflow", "runs", "--format", "json"],
    ["workflow", "runs", "--limit", "5", "--format", "json"],
    ["workflow", "list", "--format", "json"],
    ["workflow", "list", "--search", "review", "--format", "json"],
    ["workflow", "recover", "--format", "json"],
]
UNKNOWN_IDS = [
    ["workflow", "status", UNKNOWN_ID],
    ["workflow", "status", UNKNOWN_ID, "--format", "json"],
    ["workflow", "events", UNKNOWN_ID],
    ["workflow", "events", UNKNOWN_ID, "--follow"],
    ["workflow", "checkpoints", UNKNOWN_ID],
    ["workflow", "pause", UNKNOWN_ID],
    ["workflow", "cancel", UNKNOWN_ID],
    ["workflow", "resume", UNKNOWN_ID],
]
OTHERS = [
    ["workflow", "runs"],
    ["workflow", "list"],
    ["workflow", "prune", "--older-than", "1d"],
    ["workflow", "stats"],
    ["workflow", "stats", "--format", "json"],
    ["workflow", "stats", "--since", "2w", "--format", "json"],
    ["agent", "list"],
    ["agent", "list", "--format", "json"],
    ["provider", "list", "--format", "json"],
]


@pytest.fixture(params=["default", "AX_DB"])
def db_env(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """`AX_DB` unset (blank: the default `.automatosx/ax.db`), or naming a missing file in a
    missing folder."""
    if request.param == "default":
        return {"AX_DB": ""}, tmp_path / ".automatosx" / "ax.db"
    target = tmp_path / "not-yet" / "store.db"
    return {"AX_DB": str(target)}, target


def assert_nothing_created(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


@pytest.mark.parametrize("command", EMPTY_LISTS, ids=" ".join)
def test_listing_an_empty_directory_is_an_empty_list(
    run_ax: RunAx, tmp_path: Path, db_env: tuple[dict[str, str], Path], command: list[str]
) -> None:
    result = run_ax(*command, env=db_env[0])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert not db_env[1].exists()
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize("command", UNKNOWN_IDS, ids=" ".join)
def test_an_id_in_an_empty_directory_is_unknown(
    run_ax: RunAx, tmp_path: Path, db_env: tuple[dict[str, str], Path], command: list[str]
) -> None:
    result = run_ax(*command, env=db_env[0])
    result.assert_clean_error(2)
    assert f"no execution with ID '{UNKNOWN_ID}'" in result.stderr
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize("command", OTHERS, ids=" ".join)
def test_other_readers_answer_and_create_nothing(
    run_ax: RunAx, tmp_path: Path, db_env: tuple[dict[str, str], Path], command: list[str]
) -> None:
    result = run_ax(*command, env=db_env[0])
    assert result.returncode == 0, result.stderr
    assert_nothing_created(tmp_path)


def test_runs_of_an_unknown_workflow_is_still_an_error(run_ax: RunAx, tmp_path: Path) -> None:
    result = run_ax("workflow", "runs", "--workflow", "nope", env={"AX_DB": ""})
    result.assert_clean_error(2)
    assert_nothing_created(tmp_path)


def test_stats_of_an_unknown_workflow_is_an_error(run_ax: RunAx, tmp_path: Path) -> None:
    result = run_ax("workflow", "stats", "--workflow", "nope", env={"AX_DB": ""})
    result.assert_clean_error(2)
    assert "no workflow named 'nope'" in result.stderr
    assert_nothing_created(tmp_path)


def test_show_of_a_workflow_in_an_empty_directory_is_unknown(
    run_ax: RunAx, tmp_path: Path, db_env: tuple[dict[str, str], Path]
) -> None:
    result = run_ax("workflow", "show", "nope", env=db_env[0])
    result.assert_clean_error(2)
    assert "no workflow named 'nope'" in result.stderr
    assert_nothing_created(tmp_path)


def test_a_run_creates_the_database_and_readers_then_see_it(run_ax: RunAx, tmp_path: Path) -> None:
    """The other side: `run` creates the store on first use, and the readers read it."""
    (tmp_path / "w.json").write_text(
        json.dumps({
            "name": "first",
            "agents": {"say": {"provider": "command", "command": ["echo", "hi"]}},
            "steps": [{"key": "a", "agent": "say", "prompt": "x"}],
        })
    )  # fmt: skip
    run = run_ax("workflow", "run", "w.json", "--format", "json", env={"AX_DB": ""})
    assert run.returncode == 0, run.stderr
    assert (tmp_path / ".automatosx" / "ax.db").is_file()
    runs = run_ax("workflow", "runs", "--format", "json", env={"AX_DB": ""})
    assert [r["executionId"] for r in json.loads(runs.stdout)] == [
        json.loads(run.stdout)["executionId"]
    ]
