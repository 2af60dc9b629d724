"""Whole workflows through `ax workflow run` with real AI providers: the bundled local
model answering schema-shaped JSON, an OpenAI-compatible server fed its output, fallback
when a provider is rate-limited, and usage recorded per step. Keys never reach the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI
from tests.conftest import RunAx

KEY = "sk-workflow-SECRET-31337"


def write_workflow(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_local_then_openai_with_usage(run_ax: RunAx, tmp_path: Path, vendor_api: VendorAPI) -> None:
    vendor_api.reply = "Summary: fine."
    workflow = write_workflow(tmp_path, {
        "name": "review-with-models",
        "agents": {
            "parser": {"provider": "local", "maxTokens": 64, "temperature": 0},
            "writer": {"provider": "openai", "baseUrl": f"{vendor_api.url}/v1",
                       "model": "gpt-4o-mini", "apiKeyEnv": "AX_WF_KEY"},
        },
        "steps": [
            {"key": "parse", "agent": "parser",
             "prompt": "List the functions in: def load(): pass",
             "outputSchema": {"type": "object", "required": ["functions"],
                              "properties": {"functions": {"type": "array",
                                                           "items": {"type": "string"}}}}},
            {"key": "report", "agent": "writer", "dependencies": ["parse"],
             "prompt": "Summarise: {{parse.functions}}"},
        ],
    })  # fmt: skip
    result = run_ax("workflow", "run", str(workflow), "--format", "json",
                    env={"AX_WF_KEY": KEY}, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["state"] == "completed"
    assert isinstance(document["stepResults"]["parse"]["functions"], list)
    assert document["stepResults"]["report"] == "Summary: fine."
    parse, report = document["steps"]["parse"], document["steps"]["report"]
    assert (parse["provider"], report["provider"]) == ("local", "openai")
    assert parse["tokensOut"] > 0 and parse["costUsd"] == 0
    assert (report["tokensIn"], report["tokensOut"]) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert report["costUsd"] > 0
    sent = vendor_api.model_calls()[0].body["messages"][-1]["content"]
    assert sent.startswith("Summarise: [")  # the local step's JSON list, rendered
    assert KEY not in _everything_stored(tmp_path / "ax.db")


def test_rate_limited_provider_falls_back_within_a_run(
    run_ax: RunAx, tmp_path: Path, vendor_api: VendorAPI
) -> None:
    vendor_api.fail_next(429, f"rate limited for {KEY}", retry_after="1")
    writer = {"providers": ["anthropic", "openai"], "baseUrl": f"{vendor_api.url}/v1",
              "apiKeyEnv": "AX_WF_KEY", "model": "claude-sonnet-4-5"}  # fmt: skip
    workflow = write_workflow(tmp_path, {
        "name": "fallback-run",
        "agents": {"writer": writer},
        "steps": [{"key": "write", "agent": "writer", "prompt": "Write."}],
    })  # fmt: skip
    result = run_ax("workflow", "run", str(workflow), "--format", "json", env={"AX_WF_KEY": KEY})
    assert result.returncode == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["steps"]["write"]["provider"] == "openai"
    assert [r.path for r in vendor_api.model_calls()] == ["/v1/messages", "/v1/chat/completions"]
    assert KEY not in result.stdout + result.stderr


def test_auth_failure_fails_the_step_with_its_kind(
    run_ax: RunAx, tmp_path: Path, vendor_api: VendorAPI
) -> None:
    vendor_api.fail_next(401, f"invalid key {KEY}", times=5)
    workflow = write_workflow(tmp_path, {
        "name": "auth-failure",
        "config": {"maxRetries": 2},
        "agents": {"writer": {"provider": "anthropic", "baseUrl": vendor_api.url,
                              "apiKeyEnv": "AX_WF_KEY"}},
        "steps": [{"key": "write", "agent": "writer", "prompt": "Write."}],
    })  # fmt: skip
    result = run_ax("workflow", "run", str(workflow), "--format", "json", env={"AX_WF_KEY": KEY})
    assert result.returncode == 1
    step = json.loads(result.stdout)["steps"]["write"]
    assert step["state"] == "failed" and step["errorKind"] == "auth_error"
    assert step["attempts"] == 1  # a rejected key is not retried, whatever maxRetries says
    assert len(vendor_api.model_calls()) == 1
    assert KEY not in result.stdout + result.stderr
    assert KEY not in _everything_stored(tmp_path / "ax.db")


def _everything_stored(db: Path) -> str:
    """Every text value in every table of the store, joined (to search for a secret)."""
    with sqlite3.connect(db) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        texts = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                texts.extend(str(value) for value in row if value is not None)
    return "\n".join(texts)
