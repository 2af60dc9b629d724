"""Helpers shared by the runtime tests: workflows built as data, the recording agent, and
reading back what the agents recorded (the ledger) and what the store holds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatosx.definition.validation import validate_document
from automatosx.runtime.control import start_execution
from automatosx.runtime.engine import ExecutionOutcome
from automatosx.runtime.preparation import prepare_workflow
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.liveness import pid_alive
from automatosx.store.records import EventRecord, StepExecutionRecord, StepInstanceRecord

if TYPE_CHECKING:
    from tests.conftest import RunAx

AGENTS_DIR = Path(__file__).resolve().parent / "agents"
RECORDING_AGENT = AGENTS_DIR / "recording_agent.py"
AX = str(Path(sys.executable).with_name("ax"))


def command_agent(*args: str, **fields: Any) -> dict[str, Any]:
    return {
        "provider": "command",
        "command": [sys.executable, str(RECORDING_AGENT), *args],
        **fields,
    }


def step(
    key: str, prompt: str = "work", deps: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "agent": fields.pop("agent", "rec"),
        "prompt": prompt,
        "dependencies": deps or [],
        **fields,
    }


def workflow(
    steps: list[dict[str, Any]],
    *,
    name: str = "test-flow",
    config: dict[str, Any] | None = None,
    agents: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "config": config or {},
        "agents": {"rec": command_agent(), **(agents or {})},
        "steps": steps,
    }


def write_workflow(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "workflow.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@dataclass
class InProcessRun:
    outcome: ExecutionOutcome
    store: Store

    @property
    def execution_id(self) -> str:
        return self.outcome.execution_id

    def attempts(self) -> list[StepExecutionRecord]:
        return self.store.list_step_executions(self.execution_id)

    def latest(self) -> dict[str, StepInstanceRecord]:
        """Each step instance as it ended (its whole state: latest attempt, output)."""
        return {record.key: record for record in self.store.list_instances(self.execution_id)}

    def events(self) -> list[EventRecord]:
        return self.store.list_events(self.execution_id)

    def event_types(self) -> list[str]:
        return [event.type for event in self.events()]


def run_in_process(
    store: Store, data: dict[str, Any], context: dict[str, Any], *, workdir: Path
) -> InProcessRun:
    prepared = prepare_workflow(validate_document(data), workdir=workdir)
    runner = start_execution(store, prepared, context=context)
    return InProcessRun(asyncio.run(runner.run()), store)


@dataclass(frozen=True)
class AgentRun:
    step: str
    attempt: int
    pid: int
    start: float
    end: float | None
    ok: bool | None


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def agent_runs(path: Path) -> list[AgentRun]:
    """One entry per agent process: its start, and its end if it got that far."""
    starts: dict[int, dict[str, Any]] = {}
    ends: dict[int, dict[str, Any]] = {}
    for line in read_ledger(path):
        (starts if line["event"] == "start" else ends)[line["pid"]] = line
    runs = []
    for pid, start in starts.items():
        end = ends.get(pid)
        runs.append(
            AgentRun(
                start["step"],
                start["attempt"],
                pid,
                start["t"],
                end["t"] if end else None,
                end["ok"] if end else None,
            )
        )
    return sorted(runs, key=lambda r: r.start)


def by_step(runs: list[AgentRun]) -> dict[str, list[AgentRun]]:
    grouped: dict[str, list[AgentRun]] = {}
    for run in runs:
        grouped.setdefault(run.step, []).append(run)
    return grouped


def overlaps(a: AgentRun, b: AgentRun) -> bool:
    assert a.end is not None and b.end is not None
    return a.start < b.end and b.start < a.end


def peak_concurrency(runs: list[AgentRun]) -> int:
    points = [(r.start, 1) for r in runs] + [(r.end or r.start, -1) for r in runs]
    peak = current = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        current += delta
        peak = max(peak, current)
    return peak


def wait_until(
    predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def release_after_pause_seen(gate: Path) -> None:
    """Let held agents finish right after a pause request was recorded: the runner asks the
    store for control requests before starting any step, so no dependent may start now."""
    gate.touch()


def assert_dead(pid: int) -> None:
    """The process is gone (or a zombie about to be reaped by init)."""
    wait_until(lambda: not pid_alive(pid), timeout=5)


def start_ax(args: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [AX, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def unannounced(stderr: str) -> list[str]:
    """Lines of a run's stderr other than its announcement (the ID, then four commands)."""
    lines = stderr.splitlines()
    first = lines[0] if lines else ""
    if first.startswith("Execution ") and first.endswith((" started.", " resumed.")):
        lines = lines[5:]
    return [line for line in lines if line.strip()]


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "database is locked" not in err, err
    return proc.returncode, out, err


def process_exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and pid_alive(pid)


def only_execution_id(tmp_path: Path) -> str:
    store = open_store(str(tmp_path / "ax.db"))
    try:
        wait_until(lambda: bool(store.list_executions()))
        (execution,) = store.list_executions()
        return execution.id
    finally:
        store.close()


def status(run_ax: RunAx, execution_id: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`ax workflow status ID --format json`, which must succeed."""
    result = run_ax("workflow", "status", execution_id, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def events(run_ax: RunAx, execution_id: str) -> list[dict[str, Any]]:
    """`ax workflow events ID --format json`, which must succeed."""
    result = run_ax("workflow", "events", execution_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def pause_and_release(
    run_ax: RunAx, runner: subprocess.Popen[str], tmp_path: Path, gate: Path, timeout: float = 60
) -> tuple[str, dict[str, Any]]:
    """Pause the run `runner` is running (the only execution in `tmp_path/ax.db`), let its
    held step finish (`gate`) and wait for the runner to exit paused (4): the execution ID
    and the runner's JSON document ({} when it printed a table)."""
    execution_id = only_execution_id(tmp_path)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    gate.touch()
    code, out, err = finish(runner, timeout)
    assert code == 4, err
    return execution_id, json.loads(out) if out.lstrip().startswith("{") else {}


Trigger = Callable[[list[AgentRun]], bool]


def kill_runner_when(
    ax_env: dict[str, str], workdir: Path, args: list[str], trigger: Trigger, delay: float
) -> None:
    ledger = Path(ax_env["AX_TEST_LEDGER"])
    runner = start_ax(args, env=ax_env, cwd=workdir)
    deadline = time.monotonic() + 20
    while not trigger(agent_runs(ledger)) and runner.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    runner.kill()  # SIGKILL: the runner gets no chance to clean up
    finish(runner)
