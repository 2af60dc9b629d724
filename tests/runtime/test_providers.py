"""The `command` and `python` providers as the engine uses them (SPEC section 4)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.runtime.support import AGENTS_DIR, agent_runs, read_ledger, step, workflow

PY_AGENTS = str(AGENTS_DIR)


def python_agent(name: str) -> dict[str, str]:
    return {"provider": "python", "callable": f"py_agents:{name}"}


def test_command_agent_gets_the_attempt_environment(run_workflow, ledger: Path) -> None:
    run = run_workflow(
        workflow(
            [step("a", "ax:fail-attempts=1", retryPolicy={"maxRetries": 1, "retryDelayMs": 1})]
        )
    )
    assert run.outcome.state == "completed"
    lines = [line for line in read_ledger(ledger) if line["event"] == "start"]
    assert [line["attempt"] for line in lines] == [1, 2]
    for line in lines:
        assert line["execution"] == run.execution_id
        assert line["key"] == f"{run.execution_id}:a"
        assert line["agent"] == "rec" and line["step"] == "a"
        assert line["pgid"] == line["pid"]  # its own process group


def test_agent_env_and_stderr_tail_in_the_error(run_workflow, tmp_path: Path) -> None:
    script = tmp_path / "env_agent.py"
    script.write_text(
        "import os, sys\n"
        "sys.stderr.write('x' * 5000 + ' MODE=' + os.environ['MODE'])\n"
        "sys.exit(7)\n"
    )
    agents = {
        "envy": {
            "provider": "command",
            "command": [sys.executable, str(script)],
            "env": {"MODE": "review"},
        }
    }
    run = run_workflow(workflow([step("a", agent="envy")], agents=agents))
    error = run.latest()["a"].error_message or ""
    assert error.endswith("MODE=review")
    assert "exited with code 7" in error
    assert len(error) < 2200


def test_python_callables_sync_and_async(run_workflow, monkeypatch) -> None:
    monkeypatch.syspath_prepend(PY_AGENTS)
    agents = {"echo": python_agent("sync_echo"), "upper": python_agent("async_upper")}
    data = workflow(
        [step("e", "hi {{who}}", agent="echo"), step("u", "{{e.prompt}}", ["e"], agent="upper")],
        agents=agents,
    )
    run = run_workflow(data, {"who": "you"})
    assert run.outcome.state == "completed"
    latest = run.latest()
    assert latest["e"].output == {
        "prompt": "hi you",
        "step": "e",
        "attempt": 1,
        "context": {"who": "you"},
        "execution": run.execution_id,
    }
    assert latest["u"].output == "HI YOU"
    assert latest["u"].provider == "python"


def test_python_errors_keep_their_kind(run_workflow, monkeypatch) -> None:
    monkeypatch.syspath_prepend(PY_AGENTS)
    agents = {n: python_agent(n) for n in ("rate_limited", "broken", "not_json")}
    data = workflow(
        [step(n.replace("_", "-"), "x", agent=n) for n in agents],
        agents=agents,
        config={"continueOnError": True},
    )
    run = run_workflow(data)
    latest = run.latest()
    assert latest["rate-limited"].error_kind == "rate_limit"
    assert latest["broken"].error_kind == "provider_error"
    assert "ValueError: boom" in (latest["broken"].error_message or "")
    assert latest["not-json"].error_kind == "invalid_output"


def test_fallback_to_the_next_provider_when_rate_limited(run_workflow, monkeypatch, ledger) -> None:
    monkeypatch.syspath_prepend(PY_AGENTS)
    agent = {
        "providers": ["python", "command"],
        "callable": "py_agents:rate_limited",
        "command": workflow([])["agents"]["rec"]["command"],
    }
    run = run_workflow(workflow([step("a", agent="both")], agents={"both": agent}))
    assert run.outcome.state == "completed"
    assert run.latest()["a"].provider == "command"
    assert len(agent_runs(ledger)) == 1
