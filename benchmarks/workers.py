"""`ax worker` processes on the real PostgreSQL, side by side in one run (SPEC section 9):

- I/O-bound throughput: 48 submitted executions of two 0.1 s steps (the `python` provider's
  asyncio sleep), run by 1, 2, 4 and 8 worker processes of concurrency 1, in steps per
  second; the 4-worker figure over the 1-worker one is the scaling (target >= 3.5x).
- Through the queue: 200 executions of one no-op step submitted at once over 2 workers of
  concurrency 4, in executions per second, and their claim latency (submitted -> its runner
  started, time queued behind the others included) p50/p99; and the same latency for one
  execution at a time to an idle worker (the wake-up and the claim alone), median and max.
- DBOS queues on the same PostgreSQL, in the same run: the I/O-bound executions with 1 and
  4 DBOS worker processes, and the no-op ones over 2 of concurrency 4, at DBOS's default
  1 s queue polling and at 50 ms (`benchmarks/peers`, its own virtualenv; skip with
  `--no-dbos`).
- Recovery: a worker killed with SIGKILL mid-step; the seconds until the step runs again on
  another worker, that worker's start-up included (heartbeat 1 s, lease 2 s: the reaper
  acts after 3 missed heartbeats).

    python benchmarks/workers.py [--no-dbos]

Each figure runs in a fresh schema of the database `AX_BENCH_PG_URL` (default the test
server, postgresql://postgres@127.0.0.1:5432/test), dropped afterwards. Prints one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AX = str(Path(sys.executable).with_name("ax"))
PG_URL = os.environ.get("AX_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
AGENTS = {
    "sleeper": {"provider": "python", "callable": "bench_agents:sleep"},
    "noop": {"provider": "python", "callable": "bench_agents:anoop"},
    "blocker": {"provider": "python", "callable": "bench_agents:block_first_attempt"},
}


def flow(name: str, steps: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Steps (key, agent, prompt), each depending on the one before."""
    entries = []
    for index, (key, agent, prompt) in enumerate(steps):
        deps = [steps[index - 1][0]] if index else []
        entries.append({"key": key, "agent": agent, "prompt": prompt, "dependencies": deps})
    return {"name": name, "agents": AGENTS, "steps": entries}


@contextlib.contextmanager
def scratch(kind: str) -> Iterator[str]:
    """A fresh PostgreSQL `kind` ("SCHEMA" for our store, "DATABASE" for DBOS's) on
    `PG_URL`, dropped afterwards; its name."""
    import psycopg

    name = f"ax_bench_{uuid.uuid4().hex[:10]}"
    drop = "CASCADE" if kind == "SCHEMA" else "WITH (FORCE)"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE {kind} "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP {kind} IF EXISTS "{name}" {drop}')


@contextlib.contextmanager
def schema() -> Iterator[str]:
    """A store URL in a schema of its own."""
    with scratch("SCHEMA") as name:
        yield f"{PG_URL}?schema={name}"


@contextlib.contextmanager
def workers(url: str, count: int, concurrency: int, env: dict[str, str]) -> Iterator[list[Any]]:
    full_env = {**os.environ, "AX_DB": url, **env}
    command = [AX, "worker", "--concurrency", str(concurrency)]
    quiet = subprocess.DEVNULL
    procs = [
        subprocess.Popen(
            command, cwd=HERE, env=full_env, stdout=quiet, stderr=quiet, start_new_session=True
        )
        for _ in range(count)
    ]
    try:
        _wait(lambda: _registered(url) >= 2 * count, 30)  # a turn and an attempt loop each
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _registered(pg_url: str) -> int:
    """Worker loops alive (`worker.queue.registered_workers`), read from `pg_url`."""
    from automatosx.store import open_store
    from automatosx.worker.queue import registered_workers

    store = open_store(pg_url)
    try:
        return registered_workers(store)
    finally:
        store.close()


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


@contextlib.contextmanager
def submitter(url: str, data: dict[str, Any]) -> Iterator[Any]:
    """`submit(count)` -> the IDs of `count` new submitted executions of `data`, stored in
    this process (no CLI start-up per execution) as `ax workflow submit` stores them. The
    store is opened and the workflow prepared first, as DBOS's client is made before its
    benchmark's clock starts."""
    from automatosx.api.running import prepare_run
    from automatosx.api.workflow import Workflow
    from automatosx.runtime.control import submit_execution
    from automatosx.store import open_store
    from automatosx.worker.queue import ensure_job_queue

    store = open_store(url)
    try:
        ensure_job_queue(store)
        prepared = prepare_run(Workflow.from_dict(data), {}, workdir=HERE)
        yield lambda count: [submit_execution(store, prepared, context={}).id for _ in range(count)]
    finally:
        store.close()


def submit_many(url: str, data: dict[str, Any], count: int) -> list[str]:
    with submitter(url, data) as submit:
        ids: list[str] = submit(count)
        return ids


def wait_all(url: str, ids: list[str], timeout: float = 300) -> list[Any]:
    """Every execution, once all have ended. Times come from the records, not from this
    poll, which reads one execution at a time (the first not yet seen ended, as DBOS's
    `get_result` in turn): reading all 48 every 50 ms took a third of a core from the
    workers measured."""
    from automatosx.store import open_store

    store = open_store(url)
    try:
        deadline = time.monotonic() + timeout
        waiting = list(ids)
        while waiting:
            if store.get_execution(waiting[0]).is_terminal:
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError("executions did not end in time")
            time.sleep(0.05)
        records = [store.get_execution(i) for i in ids]
    finally:
        store.close()
    bad = [r for r in records if r.state != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} executions ended {bad[0].state}: {bad[0].error}")
    return records


def io_bound(count: int, executions: int = 48) -> float:
    """Steps per second of 0.1 s steps with `count` workers of concurrency 1."""
    data = flow("io", [("first", "sleeper", "0.1"), ("second", "sleeper", "0.1")])
    with schema() as url, workers(url, count, 1, {}), submitter(url, data) as submit:
        start = time.time()
        ids = submit(executions)
        records = wait_all(url, ids)
    end = max(r.completed_at or 0.0 for r in records)
    return 2 * executions / (end - start)


def through_queue(executions: int = 200) -> dict[str, float]:
    data = flow("noop", [("only", "noop", "x")])
    with schema() as url, workers(url, 2, 4, {}), submitter(url, data) as submit:
        start = time.time()
        ids = submit(executions)
        records = wait_all(url, ids)
    end = max(r.completed_at or 0.0 for r in records)
    claims = sorted(((r.started_at or 0.0) - r.created_at) * 1000 for r in records)
    return {
        "queue_noop_executions_per_s": round(executions / (end - start), 1),
        "queue_claim_p50_ms": round(statistics.median(claims), 1),
        "queue_claim_p99_ms": round(claims[max(0, round(0.99 * len(claims)) - 1)], 1),
    }


def idle_claim_ms(samples: int = 20) -> list[float]:
    """Submitted -> started, one execution at a time to an idle worker (LISTEN/NOTIFY's
    wake-up and the claim, not time spent queued behind others), sorted."""
    data = flow("claim", [("only", "noop", "x")])
    latencies = []
    with schema() as url, workers(url, 1, 1, {}):
        for _ in range(samples):
            (record,) = wait_all(url, submit_many(url, data, 1))
            latencies.append(((record.started_at or 0.0) - record.created_at) * 1000)
    return sorted(latencies)


def kill_recovery() -> float:
    """Seconds from a worker's SIGKILL to its step running again on another worker (the
    blocker hangs in its first attempt and records when each attempt starts)."""
    env = {"AX_WORKER_HEARTBEAT_S": "1", "AX_LEASE_SECONDS": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        marks = Path(tmp) / "marks"
        env["AX_BENCH_MARK"] = str(marks)

        def attempts() -> list[str]:
            return marks.read_text().splitlines() if marks.exists() else []

        with schema() as url, workers(url, 1, 1, env) as (first,):
            ids = submit_many(url, flow("kill", [("slow", "blocker", "x")]), 1)
            _wait(lambda: len(attempts()) == 1, 30)
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.time()
            with workers(url, 1, 1, env):
                _wait(lambda: len(attempts()) == 2, 60)
                rerun = float(attempts()[1].split()[0])
                wait_all(url, ids)
    return rerun - killed


# ---- the same shapes on DBOS queues (benchmarks/peers: its own virtualenv) ----


@contextlib.contextmanager
def dbos_database() -> Iterator[str]:
    """A DBOS system database URL, in a database of its own."""
    with scratch("DATABASE") as name:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"


def dbos_run(
    python: Path, count: int, concurrency: int, workflow: str, n: int, polling_s: float
) -> float:
    """Seconds for `n` enqueued workflows with `count` DBOS worker processes."""
    script = str(HERE / "peers" / "dbos_queue.py")
    with dbos_database() as url:
        procs = []
        try:
            for index in range(count):
                args = ["worker", url, f"w{index}", str(concurrency), str(polling_s)]
                proc = subprocess.Popen(
                    [str(python), script, *args],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                    start_new_session=True,
                )  # fmt: skip
                procs.append(proc)
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":  # one at a time: migrations
                    raise RuntimeError("a DBOS worker did not start")
            done = subprocess.run(
                [str(python), script, "enqueue", url, workflow, str(n)],
                capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            return float(json.loads(done.stdout)["seconds"])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def dbos_figures(executions: int = 48) -> dict[str, float]:
    import peers

    python = peers.ensure_venv()
    figures: dict[str, float] = {}
    for polling_s, label in ((1.0, "default_poll"), (0.05, "poll_50ms")):
        one = 2 * executions / dbos_run(python, 1, 1, "io_flow", executions, polling_s)
        four = 2 * executions / dbos_run(python, 4, 1, "io_flow", executions, polling_s)
        figures[f"dbos_{label}_workers_1_io_steps_per_s"] = round(one, 1)
        figures[f"dbos_{label}_workers_4_io_steps_per_s"] = round(four, 1)
        noop = dbos_run(python, 2, 4, "noop_flow", 200, polling_s)
        figures[f"dbos_{label}_queue_noop_executions_per_s"] = round(200 / noop, 1)
    return figures


def measure(*, with_dbos: bool = True) -> dict[str, Any]:
    scaling = {count: io_bound(count) for count in (1, 2, 4, 8)}
    return {
        **{f"workers_{n}_io_steps_per_s": round(v, 1) for n, v in scaling.items()},
        "workers_4_over_1": round(scaling[4] / scaling[1], 2),
        **through_queue(),
        "queue_idle_claim_p50_ms": round(statistics.median(idle := idle_claim_ms()), 1),
        "queue_idle_claim_max_ms": round(idle[-1], 1),
        "worker_sigkill_to_rerun_s": round(kill_recovery(), 2),
        **(dbos_figures() if with_dbos else {}),
    }


def main() -> int:
    print(json.dumps(measure(with_dbos="--no-dbos" not in sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
