"""Secrets never reach what `ax` stores or prints (SPEC section 6), whichever way they enter:
the process environment, a declared variable, or an inline agent's own `env`."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import RunAx

AGENT = """\
import os, sys
prompt = sys.stdin.read()
token = os.environ.get(os.environ["SECRET_NAME"], "")
if os.environ.get("FAIL"):
    sys.stderr.write("refused " + prompt + " token=" + token + "\\n")
    sys.exit(1)
print("answer to " + prompt + " token=" + token)
"""


def _stored_text(db: Path) -> str:
    """Every value of every table of the database, as one text to search (JSON-escaped
    and raw, so a secret is found in either form)."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [row for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')]
    text = json.dumps(rows, default=str)
    return text + "\n" + json.dumps(rows, default=str, ensure_ascii=False)


@pytest.mark.parametrize(
    ("name", "declared"), [("SERVICE_TOKEN", {}), ("PASSPHRASE", {"AX_SECRET_VARS": "PASSPHRASE"})]
)
def test_inline_agent_env_secret_is_masked_in_output_and_error(
    run_ax: RunAx, tmp_path: Path, name: str, declared: dict[str, str]
) -> None:
    """An agent's `env: {SERVICE_TOKEN: ...}` (or a name declared in AX_SECRET_VARS) is a
    secret variable of that agent's process: a command agent echoing it (stdout or stderr)
    must not store or print it."""
    (tmp_path / "agent.py").write_text(AGENT)
    secret = "inline-secret-4711"
    agent = {"provider": "command", "command": [sys.executable, "agent.py"]}
    data = {
        "name": "inline-secret",
        "config": {"continueOnError": True},
        "agents": {
            "ok": {**agent, "env": {name: secret, "SECRET_NAME": name}},
            "bad": {**agent, "env": {name: secret, "SECRET_NAME": name, "FAIL": "1"}},
        },
        "steps": [
            {"key": "a", "agent": "ok", "prompt": "hello"},
            {"key": "f", "agent": "bad", "prompt": "hello"},
        ],
    }
    (tmp_path / "wf.json").write_text(json.dumps(data))

    run = run_ax("workflow", "run", "wf.json", "--format", "json", env=declared)
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["stepResults"]["a"] == "answer to hello token=***"
    assert document["steps"]["f"]["error"].endswith("refused hello token=***")
    execution_id = document["executionId"]
    for command in ("status", "events"):
        shown = run_ax("workflow", command, execution_id, "--format", "json", env=declared)
        assert shown.returncode == 0 and secret not in shown.stdout, shown.stdout
    assert secret not in _stored_text(tmp_path / "ax.db")


PRINT_OWN_VARIABLES = """\
import os, sys
sys.stdin.read()
print(os.environ["AX_STEP_KEY"] + " done; key " + os.environ["AX_IDEMPOTENCY_KEY"])
"""


def test_the_projects_own_variables_are_never_masked(run_ax: RunAx, tmp_path: Path) -> None:
    """`AX_STEP_KEY` and `AX_IDEMPOTENCY_KEY` end in `_KEY`; they are identifiers the runner
    sets, not secrets. Masking them turned every occurrence of a step's key in its own
    output into `***` ("review done" became "*** done"), and the damage flowed on."""
    (tmp_path / "agent.py").write_text(PRINT_OWN_VARIABLES)
    data = {
        "name": "own-variables",
        "agents": {"me": {"provider": "command", "command": [sys.executable, "agent.py"]}},
        "steps": [
            {"key": "review", "agent": "me", "prompt": "go"},
            {
                "key": "next",
                "agent": "echo",
                "prompt": "after {{review}}",
                "dependencies": ["review"],
            },
        ],
    }
    data["agents"]["echo"] = {
        "provider": "command",
        "command": [sys.executable, "-c", "import sys; print(sys.stdin.read())"],
    }
    (tmp_path / "wf.json").write_text(json.dumps(data))
    run = run_ax("workflow", "run", "wf.json", "--format", "json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    execution_id = document["executionId"]
    expected = f"review done; key {execution_id}:review"
    assert document["stepResults"]["review"] == expected
    assert document["stepResults"]["next"] == f"after {expected}"


TELL = """\
import json, os, sys
sys.stdin.read()
print(json.dumps({"value": "id=" + os.environ["SPECIAL_TOKEN"] + " end"}))
"""


@pytest.mark.parametrize("special", ['pa"ss-wörd', "back\\slash-ünï", 'q"u\\ö"te'])
def test_a_secret_with_json_special_characters_is_masked_in_the_stored_json(
    run_ax: RunAx, tmp_path: Path, special: str
) -> None:
    """The store checks JSON text for secrets in their escaped form (quotes, backslashes,
    non-ASCII as \\uXXXX). With a plain secret set beside it (but not in the output), a
    slip in that form would let the special one through unnoticed."""
    (tmp_path / "agent.py").write_text(TELL)
    data = {
        "name": "special-secret",
        "agents": {"me": {"provider": "command", "command": [sys.executable, "agent.py"]}},
        "steps": [{"key": "a", "agent": "me", "prompt": "go"}],
    }
    (tmp_path / "wf.json").write_text(json.dumps(data))
    env = {"SPECIAL_TOKEN": special, "PLAIN_TOKEN": "plain-value-123"}
    run = run_ax("workflow", "run", "wf.json", "--format", "json", env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["stepResults"]["a"] == {"value": "id=*** end"}
    stored = _stored_text(tmp_path / "ax.db")
    assert special not in stored and json.dumps(special)[1:-1] not in stored


@pytest.mark.parametrize(("value", "masked"), [("abcd", True), ("abc", False)])
def test_secrets_of_four_characters_are_masked_shorter_ones_are_not(
    run_ax: RunAx, tmp_path: Path, value: str, masked: bool
) -> None:
    (tmp_path / "agent.py").write_text(TELL)
    data = {
        "name": "short-secret",
        "agents": {"me": {"provider": "command", "command": [sys.executable, "agent.py"]}},
        "steps": [{"key": "a", "agent": "me", "prompt": "go"}],
    }
    (tmp_path / "wf.json").write_text(json.dumps(data))
    run = run_ax("workflow", "run", "wf.json", "--format", "json", env={"SPECIAL_TOKEN": value})
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)["stepResults"]["a"]["value"]
    assert shown == f"id={'***' if masked else value} end"
    assert (value in _stored_text(tmp_path / "ax.db")) is not masked


WRITE_TOKEN = """\
import os, sys, time
prompt = sys.stdin.read()
while "hold" in prompt and not os.path.exists("gate"):
    time.sleep(0.01)
with open("seen-" + os.environ["AX_STEP_KEY"], "w") as handle:
    handle.write(os.environ.get("SERVICE_TOKEN", "<unset>"))
print("ok")
"""


def _literal_secret_flow(tmp_path: Path, token_value: str) -> Path:
    (tmp_path / "agent.py").write_text(WRITE_TOKEN)
    agent = {"provider": "command", "command": [sys.executable, "agent.py"]}
    data = {
        "name": "literal-secret",
        "agents": {"me": {**agent, "env": {"SERVICE_TOKEN": token_value}}},
        "steps": [
            {"key": "first", "agent": "me", "prompt": "hold"},
            {"key": "second", "agent": "me", "prompt": "go", "dependencies": ["first"]},
        ],
    }
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(data))
    return path


def test_an_inline_literal_secret_is_never_stored_and_resume_needs_it_from_the_shell(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    """SPEC section 4: a literal value under a secret-looking name is masked in the stored
    definition (the workflow's and the execution's copy); `validate` warns; resuming takes
    the value from the shell's variable of the same name, or fails saying why, and never
    hands the agent `***`."""
    import subprocess

    from tests.conftest import AX

    secret = "literal-service-secret-42"
    path = _literal_secret_flow(tmp_path, secret)
    checked = run_ax("workflow", "validate", str(path))
    assert checked.returncode == 0
    assert "warning:" in checked.stderr and "SERVICE_TOKEN: ${SERVICE_TOKEN}" in checked.stderr
    runner = subprocess.Popen(
        [AX, "workflow", "run", str(path), "--format", "json"],
        env=ax_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    db = tmp_path / "ax.db"
    execution_id = _wait_for_execution(db)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    (tmp_path / "gate").touch()
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 4, err
    assert (tmp_path / "seen-first").read_text() == secret  # the live run had the value
    assert secret not in _stored_text(db)

    refused = run_ax("workflow", "resume", execution_id)
    refused.assert_clean_error(2)
    assert "SERVICE_TOKEN" in refused.stderr and "never stored" in refused.stderr
    assert not (tmp_path / "seen-second").exists()

    resumed = run_ax("workflow", "resume", execution_id, "--format", "json",
                     env={"SERVICE_TOKEN": secret})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "seen-second").read_text() == secret  # never "***"
    assert secret not in _stored_text(db)


def test_a_reference_is_stored_as_written_and_resolved_at_each_attempt(
    run_ax: RunAx, tmp_path: Path
) -> None:
    path = _literal_secret_flow(tmp_path, "${MY_SERVICE_TOKEN}")
    (tmp_path / "gate").touch()
    unset = run_ax("workflow", "run", str(path))
    unset.assert_clean_error(2)
    assert "MY_SERVICE_TOKEN is not set" in unset.stderr
    assert run_ax("workflow", "validate", str(path)).returncode == 2
    value = "resolved-from-the-shell-7"
    run = run_ax("workflow", "run", str(path), "--format", "json", env={"MY_SERVICE_TOKEN": value})
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "seen-first").read_text() == value
    stored = _stored_text(tmp_path / "ax.db")
    assert "${MY_SERVICE_TOKEN}" in stored and value not in stored


def _wait_for_execution(db: Path) -> str:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db) as conn:
                try:
                    row = conn.execute("SELECT id FROM workflow_executions").fetchone()
                except sqlite3.OperationalError:
                    row = None
            if row:
                return str(row[0])
        time.sleep(0.02)
    raise AssertionError("no execution was stored")
