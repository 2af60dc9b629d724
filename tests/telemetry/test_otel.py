"""OpenTelemetry export through the real CLI: with `AX_OTEL_ENDPOINT` set, each execution
that ends reaches a real OTLP/HTTP receiver on loopback as one trace (a span for the
execution, one per step attempt with its real times from the store, GenAI usage from a
real model API), whatever path ran it (run, resume, recover, the Python API); a receiver
that is down costs the run nothing but a warning; a bad setting, or the extra missing, is
refused before anything runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from automatosx.errors import AxError
from automatosx.store import open_store
from automatosx.store.records import StepExecutionRecord
from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI
from tests.conftest import RunAx
from tests.runtime.support import (
    finish,
    start_ax,
    status,
    step,
    wait_until,
    workflow,
    write_workflow,
)
from tests.telemetry.receiver import OtlpReceiver, ReceivedSpan

Tree = list[tuple[str, int | None, "Tree"]]
RETRY_ONCE = {"maxRetries": 1, "retryDelayMs": 10}


def tree(spans: list[ReceivedSpan], parent: str | None = None) -> Tree:
    """The spans as nested (name, attempt, children), siblings by name then attempt."""
    below = sorted(
        (s for s in spans if s.parent_id == parent), key=lambda s: (s.name, s.attempt or 0)
    )
    return [(s.name, s.attempt, tree(spans, s.span_id)) for s in below]


def named(spans: list[ReceivedSpan], name: str, attempt: int | None = None) -> ReceivedSpan:
    (found,) = [s for s in spans if s.name == name and s.attempt == attempt]
    return found


def attempts_of(db: Path, execution_id: str) -> dict[tuple[str, int], StepExecutionRecord]:
    store = open_store(str(db))
    try:
        return {(a.step_key, a.attempt): a for a in store.list_step_executions(execution_id)}
    finally:
        store.close()


def at(seconds: float | None) -> int:
    assert seconds is not None
    return round(seconds * 1e9)


def assert_same_time(span_ns: int, stored_s: float | None) -> None:
    """A span's time is the stored one (to the microsecond a float of seconds holds)."""
    assert abs(span_ns - at(stored_s)) < 1_000, (span_ns, stored_s)


def run_json(run_ax: RunAx, path: Path, env: dict[str, str], code: int = 0) -> dict[str, Any]:
    result = run_ax("workflow", "run", str(path), "--format", "json", env=env)
    assert result.returncode == code, result.stderr + result.stdout
    assert "warning:" not in result.stderr, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_run_is_one_trace_with_a_span_per_attempt_and_the_model_usage(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver, vendor_api: VendorAPI
) -> None:
    writer = {"provider": "openai", "baseUrl": f"{vendor_api.url}/v1", "model": "gpt-4o-mini",
              "apiKeyEnv": "AX_WF_KEY"}  # fmt: skip
    flow = workflow(
        [
            step("flaky", "ax:fail-attempts=1", retryPolicy=RETRY_ONCE),
            step("report", "Summarise {{flaky}}", ["flaky"], agent="writer"),
        ],
        name="traced",
        agents={"writer": writer},
    )
    env = {"AX_OTEL_ENDPOINT": receiver.url, "AX_WF_KEY": "sk-test-key"}
    document = run_json(run_ax, write_workflow(tmp_path, flow), env)
    execution_id = document["executionId"]

    assert receiver.paths == ["/v1/traces"]  # one request, protobuf, when the run ended
    assert receiver.content_types == ["application/x-protobuf"]
    spans = receiver.spans()
    assert tree(spans) == [
        ("invoke_workflow traced", None, [("flaky", 1, []), ("flaky", 2, []), ("report", 1, [])])
    ]
    assert {s.trace_id for s in spans} == {uuid.UUID(execution_id).hex}
    assert {s.resource["service.name"] for s in spans} == {"automatosx"}
    assert {s.scope for s in spans} == {"automatosx"}
    assert {s.kind for s in spans} == {1}  # INTERNAL
    common = {"ax.execution.id": execution_id, "ax.workflow.name": "traced"}
    root = named(spans, "invoke_workflow traced")
    assert root.attributes == {
        **common,
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "traced",
        "ax.execution.state": "completed",
        "ax.triggered_by": "cli",
    }
    assert (root.status, root.message) == ("unset", "")
    stored = attempts_of(tmp_path / "ax.db", execution_id)
    command = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "rec",
               "gen_ai.provider.name": "command", "gen_ai.system": "command",
               "ax.provider": "command"}  # fmt: skip
    failed = named(spans, "flaky", 1)
    assert failed.attributes == {
        **common,
        **command,
        "ax.step.key": "flaky",
        "ax.step.attempt": 1,
        "ax.step.state": "failed",
        "ax.error.kind": "provider_error",
        "error.type": "provider_error",
    }
    assert failed.status == "error"
    assert failed.message == stored[("flaky", 1)].error_message
    assert "planned failure" in failed.message
    retried = named(spans, "flaky", 2)
    assert retried.attributes == {
        **common, **command, "ax.step.key": "flaky", "ax.step.attempt": 2,
        "ax.step.state": "completed",
    }  # fmt: skip
    assert retried.status == "unset"
    report = named(spans, "report", 1)
    assert report.attributes == {
        **common,
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "writer",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "ax.provider": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": INPUT_TOKENS,
        "gen_ai.usage.output_tokens": OUTPUT_TOKENS,
        "ax.cost_usd": document["steps"]["report"]["costUsd"],
        "ax.step.key": "report",
        "ax.step.attempt": 1,
        "ax.step.state": "completed",
    }
    assert report.attributes["ax.cost_usd"] > 0

    # Times: each attempt's own, as stored; retries and the dependent in order.
    for span in (failed, retried, report):
        record = stored[(span.name, span.attempt or 0)]
        assert_same_time(span.start_ns, record.started_at)
        assert_same_time(span.end_ns, record.completed_at)
    execution = status(run_ax, execution_id)
    assert root.end_ns - root.start_ns == pytest.approx(execution["durationMs"] * 1e6, abs=1e6)
    order = [root.start_ns, failed.start_ns, failed.end_ns, retried.start_ns, retried.end_ns,
             report.start_ns, report.end_ns, root.end_ns]  # fmt: skip
    assert order == sorted(order)
    assert failed.end_ns < retried.start_ns and retried.end_ns < report.start_ns


def test_a_failed_run_is_a_trace_whose_failures_are_errors(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    flow = workflow([step("broken", "ax:fail-always")], name="doomed")
    document = run_json(
        run_ax, write_workflow(tmp_path, flow), {"AX_OTEL_ENDPOINT": receiver.url}, code=1
    )
    spans = receiver.spans()
    assert tree(spans) == [("invoke_workflow doomed", None, [("broken", 1, [])])]
    root, broken = named(spans, "invoke_workflow doomed"), named(spans, "broken", 1)
    assert (root.status, root.message) == ("error", document["error"])
    assert root.attributes["ax.execution.state"] == "failed"
    assert broken.status == "error" and "planned failure" in broken.message
    assert broken.attributes["ax.step.state"] == "failed"
    assert broken.attributes["ax.error.kind"] == "provider_error"


def test_a_sub_workflow_and_a_for_each_are_in_the_same_trace(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    (tmp_path / "child.json").write_text(
        json.dumps(workflow([step("inner", "ax:echo")], name="kid")), encoding="utf-8"
    )
    flow = workflow(
        [
            step("fan", "item {{item}}", forEach={"items": "[1, 2]"}),
            {"key": "sub", "workflow": "./child.json", "with": {}},
        ],
        name="nest",
    )
    document = run_json(run_ax, write_workflow(tmp_path, flow), {"AX_OTEL_ENDPOINT": receiver.url})
    spans = receiver.spans()
    assert tree(spans) == [
        ("invoke_workflow nest", None, [
            ("fan", None, [("fan[0]", 1, []), ("fan[1]", 1, [])]),
            ("sub", 1, [("invoke_workflow kid", None, [("inner", 1, [])])]),
        ])
    ]  # fmt: skip
    assert len(receiver.paths) == 1  # the child is sent with its parent, not on its own
    assert len({s.trace_id for s in spans}) == 1
    child_id = document["steps"]["sub"]["childExecutionId"]
    sub, kid = named(spans, "sub", 1), named(spans, "invoke_workflow kid")
    assert sub.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert sub.attributes["ax.child_execution.id"] == child_id
    assert kid.attributes["ax.execution.id"] == child_id
    assert kid.attributes["ax.parent_execution.id"] == document["executionId"]
    assert sub.start_ns <= kid.start_ns <= kid.end_ns <= sub.end_ns
    fan = named(spans, "fan")
    assert fan.attributes["ax.step.items"] == 2
    for item in (named(spans, "fan[0]", 1), named(spans, "fan[1]", 1)):
        assert fan.start_ns <= item.start_ns <= item.end_ns <= fan.end_ns


def test_a_paused_run_is_sent_once_whole_when_its_resume_ends_it(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    flow = workflow([step("first", "ax:request=pause"), step("second", "go", ["first"])])
    env = {"AX_OTEL_ENDPOINT": receiver.url}
    paused = run_json(run_ax, write_workflow(tmp_path, flow), env, code=4)
    assert receiver.requests == []  # not ended: nothing yet
    resumed = run_ax("workflow", "resume", paused["executionId"], "--format", "json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert len(receiver.requests) == 1
    spans = receiver.spans()
    assert tree(spans) == [
        ("invoke_workflow test-flow", None, [("first", 1, []), ("second", 1, [])])
    ]
    stored = attempts_of(tmp_path / "ax.db", paused["executionId"])
    root = named(spans, "invoke_workflow test-flow")
    assert_same_time(named(spans, "first", 1).start_ns, stored[("first", 1)].started_at)
    assert root.start_ns <= named(spans, "first", 1).start_ns  # from the first run's start
    assert root.attributes["ax.execution.state"] == "completed"


def test_recover_sends_the_trace_with_the_attempt_its_crash_interrupted(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    up, go = tmp_path / "up", tmp_path / "go"
    flow = workflow([step("slow", f"ax:announce={up} ax:wait-file={go}")], name="crashed")
    env = {**ax_env, "AX_OTEL_ENDPOINT": receiver.url, "AX_LEASE_SECONDS": "2"}
    runner = start_ax(["workflow", "run", str(write_workflow(tmp_path, flow))], env=env,
                      cwd=tmp_path)  # fmt: skip
    wait_until(up.exists)
    runner.send_signal(signal.SIGKILL)
    finish(runner)
    go.touch()
    recovered = run_ax("workflow", "recover", "--format", "json", env=env)
    assert recovered.returncode == 0, recovered.stderr
    assert "warning:" not in recovered.stderr
    (document,) = json.loads(recovered.stdout)
    spans = receiver.spans()
    assert tree(spans) == [("invoke_workflow crashed", None, [("slow", 1, []), ("slow", 2, [])])]
    interrupted = named(spans, "slow", 1)  # closed as cancelled by the resume (the crash)
    stored = attempts_of(tmp_path / "ax.db", document["executionId"])
    assert stored[("slow", 1)].state == "cancelled"
    assert interrupted.attributes["ax.step.state"] == "cancelled"
    assert interrupted.attributes["ax.error.kind"] == stored[("slow", 1)].error_kind
    assert (interrupted.status, interrupted.message) == ("error", stored[("slow", 1)].error_message)
    assert_same_time(interrupted.start_ns, stored[("slow", 1)].started_at)
    assert named(spans, "slow", 2).attributes["ax.step.state"] == "completed"


@pytest.mark.postgres
def test_a_run_on_postgresql_is_the_same_trace(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver, pg_url: str
) -> None:
    flow = workflow([step("flaky", "ax:fail-attempts=1", retryPolicy=RETRY_ONCE)], name="pg")
    env = {"AX_OTEL_ENDPOINT": receiver.url, "AX_DB": pg_url}
    document = run_json(run_ax, write_workflow(tmp_path, flow), env)
    spans = receiver.spans()
    assert tree(spans) == [("invoke_workflow pg", None, [("flaky", 1, []), ("flaky", 2, [])])]
    assert {s.trace_id for s in spans} == {uuid.UUID(document["executionId"]).hex}
    assert named(spans, "flaky", 1).status == "error"


@pytest.mark.parametrize("receiver_state", ["down", "refusing"])
def test_a_receiver_that_is_down_or_refuses_costs_the_run_one_warning(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver, receiver_state: str
) -> None:
    endpoint = receiver.url
    if receiver_state == "down":
        receiver.stop()  # nothing listens on its port any more
    else:
        receiver.answer_status = 400
    flow = workflow([step("only", "work")], name="unheard")
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, flow)), "--format", "json",
                    env={"AX_OTEL_ENDPOINT": endpoint})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "completed"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    execution_id = json.loads(result.stdout)["executionId"]
    assert warnings == [
        f"warning: the trace of execution {execution_id} was not sent to "
        f"{endpoint}/v1/traces: " + ("[Errno 111] Connection refused" if receiver_state == "down"
                                     else "Failed to export spans batch code: 400, reason: Bad "
                                     "Request")
    ]  # fmt: skip
    assert "Traceback" not in result.stderr and "error:" not in result.stderr


@pytest.mark.parametrize(
    "value", ["localhost:4318", "ftp://127.0.0.1:4318", "http://", "http://host:port", "4318"]
)
def test_an_endpoint_that_is_not_an_http_url_is_refused_before_anything_runs(
    run_ax: RunAx, tmp_path: Path, value: str
) -> None:
    flow = workflow([step("only", f"ax:touch={tmp_path / 'ran'}")])
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, flow)),
                    env={"AX_OTEL_ENDPOINT": value})  # fmt: skip
    result.assert_clean_error(2)
    assert result.stderr.startswith("error: AX_OTEL_ENDPOINT must be an http:// or https:// URL")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "ax.db").exists()


def test_without_the_otel_extra_the_endpoint_is_refused_naming_the_install(
    run_ax: RunAx, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """An interpreter without the extra, made by a regular `opentelemetry` package first on
    the path: the installed one (a namespace package) is then not seen, as if absent."""
    shadow = tmp_path / "no-otel" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    flow = workflow([step("only", f"ax:touch={tmp_path / 'ran'}")])
    env = {"AX_OTEL_ENDPOINT": receiver.url, "PYTHONPATH": str(shadow.parent)}
    result = run_ax("workflow", "run", str(write_workflow(tmp_path, flow)), env=env)
    result.assert_clean_error(2)
    assert result.stderr == (
        "error: AX_OTEL_ENDPOINT is set but OpenTelemetry is not installed: "
        "pip install 'automatosx[otel]'\n"
    )
    assert not (tmp_path / "ran").exists() and not (tmp_path / "ax.db").exists()
    assert receiver.requests == []


def test_the_python_api_sends_the_trace_and_refuses_a_bad_endpoint_up_front(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import automatosx as ax

    async def answer(prompt: str, **_: Any) -> str:
        return prompt.upper()

    flow = {"name": "from-python", "steps": [{"key": "shout", "agent": "fn", "prompt": "hi"}]}
    monkeypatch.setenv("AX_OTEL_ENDPOINT", receiver.url)
    result = asyncio.run(ax.run_workflow_async(flow, agents={"fn": answer}, db=tmp_path / "a.db"))
    assert result.state == "completed"
    spans = receiver.spans()
    assert tree(spans) == [("invoke_workflow from-python", None, [("shout", 1, [])])]
    assert named(spans, "shout", 1).attributes["gen_ai.provider.name"] == "python"
    assert spans[0].trace_id == uuid.UUID(result.execution_id).hex

    monkeypatch.setenv("AX_OTEL_ENDPOINT", "localhost:4318")
    with pytest.raises(AxError, match="AX_OTEL_ENDPOINT must be an http"):
        ax.run_workflow(flow, agents={"fn": answer}, db=tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()


PROBE = """
import json, sys
from automatosx.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
sys.stderr.write("\\nLOADED=" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _loaded(args: list[str], cwd: Path, env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "AX_DB": str(cwd / "ax.db"), "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    marker = proc.stderr.rpartition("LOADED=")[2]
    assert marker, proc.stderr
    return set(json.loads(marker))


def test_the_sdk_is_imported_only_to_send_a_trace(tmp_path: Path, receiver: OtlpReceiver) -> None:
    write_workflow(tmp_path, workflow([step("only", "work")]))
    run = ["workflow", "run", "workflow.json", "--format", "json"]
    plain = _loaded(run, tmp_path, {})
    assert {m for m in plain if m.startswith(("opentelemetry", "automatosx.telemetry"))} == set()
    reading = _loaded(["workflow", "runs"], tmp_path, {"AX_OTEL_ENDPOINT": receiver.url})
    assert "opentelemetry.sdk" not in reading and "automatosx.telemetry" not in reading
    assert receiver.requests == []
    sending = _loaded(run, tmp_path, {"AX_OTEL_ENDPOINT": receiver.url})
    assert {"opentelemetry.sdk.trace", "automatosx.telemetry.otel"} <= sending
    assert len(receiver.requests) == 1
