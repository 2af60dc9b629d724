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
    """Every output, error and event of the database, as one text to search."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT output, error_message FROM workflow_step_executions").fetchall()
        rows += conn.execute("SELECT data, data FROM workflow_events").fetchall()
    return json.dumps(rows)


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
