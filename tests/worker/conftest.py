"""Real `ax worker` processes on loopback against the real PostgreSQL, each test in a
schema of its own (the store's tables and procrastinate's), with the recording agent's
ledger, a 1 s lease and a 0.3 s heartbeat so a lost worker is noticed within a second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AX, RunAx
from tests.runtime.support import workflow, write_workflow
from tests.web.conftest import serve  # noqa: F401  (the dashboard, for the worker tests)

pytestmark = pytest.mark.postgres

HEARTBEAT_S = "0.3"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def ax_env(ax_env: dict[str, str], pg_url: str, ledger: Path) -> dict[str, str]:
    return {
        **ax_env,
        "AX_DB": pg_url,
        "AX_TEST_LEDGER": str(ledger),
        "AX_LEASE_SECONDS": "1",
        "AX_WORKER_HEARTBEAT_S": HEARTBEAT_S,
    }


Workers = Callable[..., subprocess.Popen[str]]


@contextmanager
def workers_started(
    env: dict[str, str], tmp_path: Path, *, prefix: Sequence[str] = (), log: str = "worker"
) -> Iterator[Workers]:
    """Starts `ax worker` processes (own process group each, `prefix` before the command:
    `ip netns exec NS`); all are killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        out = open(tmp_path / f"{log}-{len(started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [*prefix, AX, "worker", *args], env=env, cwd=tmp_path, stdout=out, stderr=out,
            text=True, start_new_session=True,
        )  # fmt: skip
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def start_worker(ax_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    with workers_started(ax_env, tmp_path) as start:
        yield start


def submit(
    run_ax: RunAx,
    tmp_path: Path,
    steps: list[dict[str, Any]],
    name: str = "w",
    *flags: str,
    config: dict[str, Any] | None = None,
) -> str:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    path = write_workflow(folder, workflow(steps, name=name, config=config))
    result = run_ax("workflow", "submit", str(path), "--format", "json", *flags)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["state"] == "queued"
    return str(document["executionId"])


def status(run_ax: RunAx, execution_id: str) -> dict[str, Any]:
    result = run_ax("workflow", "status", execution_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def registered_workers(pg_url: str) -> int:
    """Worker loops alive (`worker.queue.registered_workers`), read from `pg_url`."""
    from automatosx.store import open_store
    from automatosx.worker.queue import registered_workers

    store = open_store(pg_url)
    try:
        return registered_workers(store)
    finally:
        store.close()
