"""`ax ui` over a big store (10,000 executions, 100,000 events; seeded by `stats.seed`): request
times of the API and the execution page, how soon a committed event reaches a stream, and
the server's CPU while five streams stay open with nothing happening.

    python benchmarks/ui_server.py [--executions 10000]

Prints one JSON line of figures. Targets (issue 16): list and status p95 < 50 ms, stats
< 500 ms, execution page < 200 ms, event to stream < 500 ms, idle CPU near zero.
Request times are measured by the client on loopback, so they include HTTP and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stats
from approval_wait import cpu_seconds
from measure import AX, write_workflow

REQUESTS = 60
IDLE_SECONDS = 10.0


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def timed(call: Callable[[], httpx.Response], count: int = REQUESTS) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return times


def measure(executions: int = 10_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = home / "ax.db"
        stats.seed(db, executions, executions * 10)
        newest = _newest(db)
        env = {**os.environ, "AX_DB": str(db)}
        server = subprocess.Popen(
            [AX, "ui", "--port", "0"], env=env, cwd=home, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stderr is not None
            match = re.search(r"(http://\S+)/", server.stderr.readline())
            if match is None:
                raise RuntimeError("ax ui did not start")
            return _figures(match.group(1), server.pid, newest, home, env)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)


def _newest(db: Path) -> str:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT id FROM workflow_executions ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        return str(row[0])
    finally:
        con.close()


def _figures(url: str, pid: int, newest: str, home: Path, env: dict[str, str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/api/v1/executions")  # warm the caches of SQLite and the interpreter
        figures["ui_api_list_p95_ms"] = p95(timed(lambda: client.get("/api/v1/executions")))
        figures["ui_api_status_p95_ms"] = p95(
            timed(lambda: client.get(f"/api/v1/executions/{newest}"))
        )
        figures["ui_api_stats_ms"] = statistics.median(
            timed(lambda: client.get("/api/v1/stats"), count=7)
        )
        figures["ui_execution_page_p95_ms"] = p95(
            timed(lambda: client.get(f"/executions/{newest}"), count=20)
        )
    figures["ui_event_to_stream_ms"] = _stream_latency(url, home, env)
    figures["ui_idle_5_streams_cpu_share"] = _idle_cpu(url, pid, home, env)
    return figures


def _held_run(home: Path, env: dict[str, str], name: str) -> tuple[subprocess.Popen[str], Path]:
    """A run whose one step waits until its file exists (`bench_agents:wait_file`)."""
    release = home / f"{name}.release"
    data = {
        "name": name,
        "agents": {"waiter": {"provider": "command", "command": [
            sys.executable, "-c",
            "import os, sys, time\n"
            "p = sys.argv[1]\n"
            "while not os.path.exists(p): time.sleep(0.005)\n"
            "print('done')", str(release)]}},
        "steps": [{"key": "wait", "agent": "waiter", "prompt": "x"}],
    }  # fmt: skip
    folder = home / name
    folder.mkdir()
    runner = subprocess.Popen(
        [AX, "workflow", "run", str(write_workflow(data, folder))], env=env, cwd=home,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return runner, release


def _execution_of(url: str, name: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = httpx.get(f"{url}/api/v1/executions", params={"workflow": name})
        if found.status_code == 200 and found.json():
            return str(found.json()[0]["executionId"])
        time.sleep(0.05)
    raise RuntimeError(f"no execution of {name} appeared")


def _stream_latency(url: str, home: Path, env: dict[str, str]) -> float:
    """From the commit of `step_completed` (its createdAt, set in the writing transaction)
    to its arrival on an open stream; the median of three runs."""
    samples = []
    for n in range(3):
        runner, release = _held_run(home, env, f"latency-{n}")
        execution_id = _execution_of(url, f"latency-{n}")
        with httpx.stream("GET", f"{url}/api/v1/executions/{execution_id}/stream") as stream:
            released = False
            for line in stream.iter_lines():
                if not line.startswith("data: "):
                    continue
                event: dict[str, Any] = json.loads(line[6:])
                if not released and event.get("type") == "step_started":
                    release.touch()
                    released = True
                if event.get("type") == "step_completed":
                    arrived = time.time()
                    committed = _epoch(event["createdAt"])
                    samples.append((arrived - committed) * 1000)
                    break
        runner.wait(60)
    return statistics.median(samples)


def _idle_cpu(url: str, pid: int, home: Path, env: dict[str, str]) -> float:
    """The server's CPU share over IDLE_SECONDS with five streams open on a waiting run."""
    runner, release = _held_run(home, env, "idle")
    execution_id = _execution_of(url, "idle")
    stop = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{url}/api/v1/executions/{execution_id}/stream",
                          timeout=None) as stream:  # fmt: skip
            for _ in stream.iter_lines():
                if stop.is_set():
                    return

    threads = [threading.Thread(target=listen, daemon=True) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the streams have sent the log so far
    before = cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)
    used = cpu_seconds(pid) - before
    stop.set()
    release.touch()
    runner.wait(60)
    return used / IDLE_SECONDS


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10_000)
    print(json.dumps(measure(parser.parse_args().executions)))


if __name__ == "__main__":
    main()
