"""Secrets stay out of everything the store writes."""

from __future__ import annotations

import json

import pytest

from automatosx.secrets import SecretRedactor, redact, redactor_from_env, secret_values
from automatosx.store import open_store
from automatosx.store.codec import ColumnCodec
from automatosx.store.records import CreateCheckpoint, SetContext, SetExecutionState
from tests.store import sample
from tests.store.steps import Steps

SECRET = "sk-live-0123456789abcdef"
TOKEN = 'tok"en\\with/quotes'


def test_secret_values_come_from_names_and_declared_variables() -> None:
    env = {
        "OPENAI_API_KEY": SECRET,
        "GH_TOKEN": "ghp_abcdef",
        "DB_PASSWORD": "hunter22",
        "APP_SECRET": "s3cr3t!",
        "CUSTOM": "declared-value",
        "AX_SECRET_VARS": "CUSTOM, OTHER",
        "SHORT_KEY": "abc",
        "HOME": "/home/user",
        "lower_token": "lowercase-name",
    }
    found = secret_values(env)
    assert set(found) == {
        SECRET,
        "ghp_abcdef",
        "hunter22",
        "s3cr3t!",
        "declared-value",
        "lowercase-name",
    }
    assert list(found) == sorted(found, key=lambda v: (-len(v), v))


def test_redact_replaces_every_occurrence_inside_strings() -> None:
    env = {"A_KEY": SECRET, "B_TOKEN": SECRET + "-longer"}
    text = f"auth {SECRET}-longer and {SECRET}; Bearer{SECRET}"
    assert redact(text, secret_values(env)) == "auth *** and ***; Bearer***"
    assert redact("nothing here", secret_values(env)) == "nothing here"
    assert redact(f"x {SECRET}", secret_values({})) == f"x {SECRET}"


def test_redactor_masks_nested_values_and_json_escaped_secrets() -> None:
    redactor = SecretRedactor([TOKEN, "ünïcødé-key"])
    codec = ColumnCodec(redactor)
    value = {"a": [TOKEN, {"b": f"pre {TOKEN} post"}], TOKEN: 1, "u": "ünïcødé-key", "n": 5}
    stored = json.loads(codec.json(value))
    assert stored == {"a": ["***", {"b": "pre *** post"}], "***": 1, "u": "***", "n": 5}
    assert codec.text(f"error: {TOKEN}") == "error: ***"
    assert not SecretRedactor([]).active
    assert ColumnCodec(SecretRedactor([])).json({"k": TOKEN}) == json.dumps(
        {"k": TOKEN}, separators=(",", ":")
    )


def test_codec_survives_undecodable_text_and_odd_values() -> None:
    codec = ColumnCodec(SecretRedactor([]))
    assert codec.text("bad \udcff byte\x00") == "bad ? byte"
    assert json.loads(codec.json({"when": __import__("datetime").date(2025, 1, 2)})) == {
        "when": "2025-01-02"
    }


def test_everything_stored_is_redacted(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_API_KEY", SECRET)
    monkeypatch.setenv("AX_SECRET_VARS", "PLAIN_NAME")
    monkeypatch.setenv("PLAIN_NAME", "declared-secret")
    assert redactor_from_env().active
    definition = sample.definition(
        description=f"uses {SECRET}",
        agents={"fake": {"provider": "command", "command": ["x"], "env": {"K": SECRET}}},
    )
    with open_store(store_url) as store:  # type: ignore[attr-defined]
        workflow = store.upsert_workflow(definition)
        execution, lease = store.create_execution(
            workflow_id=workflow.id,
            context={"key": SECRET, "note": "declared-secret here"},
            triggered_by="cli",
            priority=0,
            owner=sample.OWNER,
            lease_seconds=60,
        )
        steps = Steps(execution.id, definition)
        store.write(
            lease,
            [
                SetContext({"key": f"again {SECRET}"}),
                *steps.start("parse", 1.0),
                *steps.succeed("parse", 2.0, output={"echo": SECRET, "note": "declared-secret"}),
                *steps.start("scan", 2.0, prompt=f"Scan with {SECRET}"),
                *steps.fail("scan", 3.0, "provider_error", f"401 for key {SECRET}"),
                *steps.start("scan", 3.0, prompt=f"Scan again with {SECRET}"),
                *steps.cancel("report", f"not started: {SECRET} failed", 3.0),
                CreateCheckpoint(
                    "executing", {"key": SECRET}, [], ["parse"], f"l {SECRET}", "user"
                ),
                SetExecutionState("failed", error=f"failed: {SECRET}"),
            ],
        )
        dumped = repr(
            (
                store.get_workflow(workflow.id),
                store.get_execution(execution.id),
                store.list_instances(execution.id),
                store.list_step_executions(execution.id),
                store.list_events(execution.id),
                store.list_checkpoints(execution.id),
            )
        )
        stored = store.get_execution(execution.id)
        parse, scan, report = store.list_instances(execution.id)
        *_, failed_attempt, retried_attempt = store.list_step_executions(execution.id)
        events = store.list_events(execution.id)
    assert SECRET not in dumped and "declared-secret" not in dumped
    assert stored.context == {"key": "again ***"}
    assert stored.error == "failed: ***"
    assert parse.output == {"echo": "***", "note": "***"}
    assert failed_attempt.error_message == "401 for key ***"
    assert failed_attempt.prompt == "Scan with ***"  # the history row, moved by the retry
    assert scan.prompt == retried_attempt.prompt == "Scan again with ***"
    assert report.error_message == "not started: *** failed"
    assert failed_attempt.step_key == "scan"
    [failed_event] = [e for e in events if e.type == "step_failed"]
    assert failed_event.data["error"] == "401 for key ***"
