"""Two hosts, one of them behind a network partition: worker A runs in a network namespace
of its own and reaches a private PostgreSQL cluster over a veth pair, worker B runs on the
host. A takes a step; the link goes down; B takes the step over (its attempt 2) within a
few heartbeats and the execution completes; the link comes back and A's late answer for
attempt 1 reaches the database and is refused: the step is recorded once, by attempt 2.

Runs as root with iproute2 (`ip netns`, veth), as this machine and CI do; everything runs
against the private cluster, never the shared server."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RunAx
from tests.runtime.support import agent_runs, read_ledger, step
from tests.worker.conftest import (
    HEARTBEAT_S,
    Workers,
    registered_workers,
    status,
    submit,
    wait_until,
    workers_started,
)
from tests.worker.private_postgres import Cluster, _as_postgres, _bin, _free_port

NETWORK = "10.231.0.0/16"  # each run takes a /30 of it: 10.231.X.0/30


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Link:
    """A network namespace joined to the host by a veth pair on a /30."""

    namespace: str
    host_side: str  # the veth end on the host
    host_ip: str  # its address: where the namespace reaches the host
    inner_ip: str  # the other end's, inside the namespace

    def down(self) -> None:
        """The partition: the host's end goes down (the namespace's loses its carrier)."""
        _ip("link", "set", self.host_side, "down")

    def up(self) -> None:
        _ip("link", "set", self.host_side, "up")

    def pids(self) -> list[int]:
        found = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True, timeout=30
        )
        return [int(pid) for pid in found.stdout.split()]


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    candidates = [x for x in range(256) if f" 10.231.{x}." not in used]
    return random.choice(candidates)


@pytest.fixture
def link() -> Iterator[Link]:
    tag = secrets.token_hex(3)
    x = _free_subnet()
    found = Link(f"axp-{tag}", f"axp{tag}h", f"10.231.{x}.1", f"10.231.{x}.2")
    inner_side = f"axp{tag}n"
    try:
        _ip("netns", "add", found.namespace)
        _ip("link", "add", found.host_side, "type", "veth", "peer", "name", inner_side,
            "netns", found.namespace)  # fmt: skip
        _ip("addr", "add", f"{found.host_ip}/30", "dev", found.host_side)
        _ip("link", "set", found.host_side, "up")
        _ip("-n", found.namespace, "addr", "add", f"{found.inner_ip}/30", "dev", inner_side)
        _ip("-n", found.namespace, "link", "set", inner_side, "up")
        _ip("-n", found.namespace, "link", "set", "lo", "up")
        yield found
    finally:
        for pid in found.pids():  # what the test started in there (a worker, its steps)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with suppress(subprocess.CalledProcessError):
            _ip("link", "del", found.host_side)  # its peer goes with it
        with suppress(subprocess.CalledProcessError):
            _ip("netns", "del", found.namespace)


class ReachableCluster(Cluster):
    """A private cluster that also listens where the namespace reaches the host (settings
    in its postgresql.conf), logging each data-modifying statement with its client's
    address (`log_statement = mod`), so the test sees a late answer arrive."""

    def url_at(self, host: str) -> str:
        return f"postgresql://postgres@{host}:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.data.parent / "server.log"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data}"  # the rest is in postgresql.conf
        _as_postgres(
            _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )


@contextmanager
def reachable_cluster(also_on: str, keep_log: Path) -> Iterator[ReachableCluster]:
    home = Path(tempfile.mkdtemp(prefix="ax-pg-"))
    data = home / "data"
    shutil.chown(home, "postgres", "postgres")
    try:
        _as_postgres(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N")
        with open(data / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write(f"host all all {NETWORK} trust\n")
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1,{also_on}'\n"
                "log_statement = 'mod'\n"
                "log_line_prefix = '%h '\n"
                # a client partitioned mid-transaction would hold its row locks until TCP
                # gives up (many minutes): the server ends such a session after 2 s
                "idle_in_transaction_session_timeout = '2s'\n"
            )
        cluster = ReachableCluster(data, _free_port())
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        with suppress(OSError):
            shutil.copy(home / "server.log", keep_log)  # for a look after a failure
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def cluster(link: Link, tmp_path: Path) -> Iterator[ReachableCluster]:
    with reachable_cluster(link.host_ip, keep_log=tmp_path / "server.log") as started:
        yield started


@pytest.fixture
def pg_url(cluster: ReachableCluster) -> str:
    """The private cluster, for `ax_env` (run_ax, start_worker): the shared server is not
    used at all."""
    return cluster.url


@pytest.fixture
def start_worker_inside(
    link: Link, cluster: ReachableCluster, ax_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """`ax worker` in the namespace (`ip netns exec` execs it: its pid is the worker's),
    reaching the cluster at the host's end of the veth pair."""
    env = {**ax_env, "AX_DB": cluster.url_at(link.host_ip)}
    prefix = ("ip", "netns", "exec", link.namespace)
    with workers_started(env, tmp_path, prefix=prefix, log="inside-worker") as start:
        yield start


@pytest.fixture
def go(tmp_path: Path) -> Iterator[Path]:
    """The file the step waits for; made at the end in any case, so that no step process
    of a failed run lingers (one whose worker was killed would wait for it 30 s)."""
    path = tmp_path / "go"
    yield path
    path.touch()


def arrived_since(cluster: ReachableCluster, offset: int, client: str, worker: str) -> bool:
    """Whether the server logged, after byte `offset` of its log, an answer (the update of
    a dispatched attempt) from `client` naming `worker` as its claimant."""
    with open(cluster.log, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{client} ") and "UPDATE workflow_dispatched_attempts" in line:
            detail = lines[index + 1] if index + 1 < len(lines) else ""
            if "DETAIL:" in detail and f"'{worker}'" in detail:
                return True
    return False


def transactions_open(cluster: ReachableCluster, client: str) -> int:
    """How many transactions the sessions from `client` have open now."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s::inet "
            "AND xact_start IS NOT NULL",
            (client,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_partitioned_worker_is_taken_over_and_its_late_answer_refused(
    run_ax: RunAx,
    tmp_path: Path,
    link: Link,
    cluster: ReachableCluster,
    start_worker_inside: Callable[..., subprocess.Popen[str]],
    start_worker: Workers,
    ledger: Path,
    go: Path,
) -> None:
    started = tmp_path / "a-started"
    inside = start_worker_inside()
    execution_id = submit(
        run_ax, tmp_path,
        [step("a", f"ax:announce={started} ax:wait-file={go}"), step("b", deps=["a"])],
    )  # fmt: skip
    wait_until(started.exists)
    (first,) = [line for line in read_ledger(ledger) if line["event"] == "start"]
    assert (first["step"], first["attempt"], first["ppid"]) == ("a", 1, inside.pid)
    assert inside.pid in link.pids()  # the step runs behind the link that will go down

    outside = start_worker()
    wait_until(lambda: registered_workers(cluster.url) == 4)  # both: two loops each
    started.unlink()
    partitioned_at = time.monotonic()
    link.down()
    wait_until(started.exists, timeout=15)  # a runs again, on the host
    taken_over_s = time.monotonic() - partitioned_at
    second = [line for line in read_ledger(ledger) if line["event"] == "start"][-1]
    assert (second["step"], second["attempt"], second["ppid"]) == ("a", 2, outside.pid), (
        read_ledger(ledger),
        run_ax("workflow", "events", execution_id, "--format", "json").stdout,
    )
    assert taken_over_s < 3 * float(HEARTBEAT_S) + 3, taken_over_s  # 3 heartbeats, + slack

    go.touch()  # both runs of `a` end: B's answer is recorded, A's cannot get through
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30", "--format", "json")
    assert waited.returncode == 0, (waited.stdout, waited.stderr)
    assert json.loads(waited.stdout)["state"] == "completed"
    wait_until(lambda: all(run.end is not None for run in agent_runs(ledger)))
    (behind,) = [run for run in agent_runs(ledger) if run.step == "a" and run.attempt == 1]
    assert behind.end is not None  # A's step process ran to its end: A holds an answer

    log_size = cluster.log.stat().st_size
    link.up()  # the partition heals: A's answer for attempt 1 reaches the database
    me = f"{socket.gethostname()}:{inside.pid}"
    wait_until(lambda: arrived_since(cluster, log_size, link.inner_ip, me), timeout=40)
    wait_until(lambda: transactions_open(cluster, link.inner_ip) == 0)  # its turn is over
    assert inside.poll() is None  # it lost the attempt, not its life

    events = json.loads(run_ax("workflow", "events", execution_id, "--format", "json").stdout)
    completed_a = [e for e in events if e["type"] == "step_completed" and e["stepKey"] == "a"]
    assert [e["data"]["attempt"] for e in completed_a] == [2]  # recorded once, by attempt 2
    history_a = [(e["type"], e["data"]["attempt"]) for e in events if e["stepKey"] == "a"]
    assert history_a == [
        ("step_started", 1),
        ("step_cancelled", 1),  # interrupted: its worker went silent
        ("step_started", 2),
        ("step_completed", 2),
    ]
    assert events[-1]["type"] == "workflow_completed"  # the late answer added nothing after
    document = status(run_ax, execution_id)
    assert document["state"] == "completed"
    assert (document["steps"]["a"]["attempts"], document["steps"]["b"]["attempts"]) == (2, 1)
    assert [(r.step, r.attempt) for r in agent_runs(ledger)] == [("a", 1), ("a", 2), ("b", 1)]
