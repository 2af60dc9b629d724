"""`AX_*` settings through the real CLI: a value a setting cannot have is one `error:` line
naming the setting and exit 2, whatever the command, never a silent default (SPEC 7)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from automatosx.errors import AxError
from automatosx.settings import check_settings, database_location
from tests.conftest import RunAx

BAD_SETTINGS = [
    ("AX_DB", "mysql://user:hunter2@db.example/x"),
    ("AX_DB", "sqlite:///"),
    ("AX_DB_SYNC", "sometimes"),
    ("AX_LEASE_SECONDS", "abc"),
    ("AX_LEASE_SECONDS", "0"),
    ("AX_LEASE_SECONDS", "nan"),
    ("AX_LOCAL_THREADS", "two"),
    ("AX_LOCAL_THREADS", "-1"),
    ("AX_HTTP_MAX_IN_FLIGHT", "0"),
    ("AX_HTTP_MAX_IN_FLIGHT", "1.5"),
    ("AX_OTEL_ENDPOINT", "localhost:4318"),
    ("AX_OTEL_ENDPOINT", "ftp://user:hunter2@collector"),
]

ECHO_WORKFLOW = {
    "name": "settings-echo",
    "agents": {
        "echo": {
            "provider": "command",
            "command": [sys.executable, "-c", "import sys; print(sys.stdin.read())"],
        }
    },
    "steps": [{"key": "only", "agent": "echo", "prompt": "hello"}],
}


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_a_bad_setting_is_one_error_line_naming_it(
    run_ax: RunAx, tmp_path: Path, name: str, value: str
) -> None:
    (tmp_path / "flow.json").write_text(json.dumps(ECHO_WORKFLOW))
    for command in (["workflow", "runs"], ["workflow", "run", "flow.json"]):
        result = run_ax(*command, env={name: value})
        result.assert_clean_error(2)
        assert result.stderr.startswith(f"error: {name} "), (command, result.stderr)
        assert result.stdout == "", command
    assert "hunter2" not in result.stderr  # a URL's password is not echoed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.json"]  # nothing was created


def test_an_unknown_database_scheme_creates_nothing(run_ax: RunAx, tmp_path: Path) -> None:
    """It once became a folder `mysql:` holding a SQLite file `x`."""
    (tmp_path / "flow.json").write_text(json.dumps(ECHO_WORKFLOW))
    result = run_ax("workflow", "run", "flow.json", env={"AX_DB": "mysql://x"})
    result.assert_clean_error(2)
    assert "unknown database scheme 'mysql://'" in result.stderr
    assert not (tmp_path / "mysql:").exists()


def test_every_bad_setting_is_named_on_the_one_line(run_ax: RunAx) -> None:
    """Checked before any command runs, even one that opens no store."""
    result = run_ax("agent", "list", env={"AX_DB": "redis://x", "AX_LEASE_SECONDS": "soon"})
    result.assert_clean_error(2)
    (line,) = result.stderr.splitlines()
    assert "AX_DB" in line and "AX_LEASE_SECONDS" in line


def test_help_works_whatever_the_settings(run_ax: RunAx) -> None:
    result = run_ax("workflow", "runs", "--help", env={"AX_DB": "mysql://x"})
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_the_accepted_forms_still_work(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "flow.json").write_text(json.dumps(ECHO_WORKFLOW))
    good = {
        "AX_DB": "sqlite:///rel.db",
        "AX_DB_SYNC": "FULL",
        "AX_LEASE_SECONDS": "2.5",
        "AX_LOCAL_THREADS": "1",
        "AX_HTTP_MAX_IN_FLIGHT": "8",
    }
    result = run_ax("workflow", "run", "flow.json", "--format", "json", env=good)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "completed"
    assert (tmp_path / "rel.db").is_file()
    blank = run_ax("workflow", "runs", "--format", "json", env={"AX_LEASE_SECONDS": " "})
    assert blank.returncode == 0, blank.stderr  # blank is unset, not an error


def test_database_location_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_location(None, {}) == str(tmp_path / ".automatosx" / "ax.db")
    assert database_location("sqlite:///rel.db") == "rel.db"
    assert database_location("sqlite:////abs/x.db") == "/abs/x.db"
    assert database_location(":memory:") == ":memory:"
    assert database_location("plain/path.db") == "plain/path.db"
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        assert database_location(url) == url
    for bad in ("mysql://x", "file:///x.db", "postgresql+psycopg://h/db"):
        with pytest.raises(AxError, match="unknown database scheme"):
            database_location(bad)
    check_settings({"AX_DB": str(tmp_path / "x.db"), "AX_LEASE_SECONDS": "1"})
