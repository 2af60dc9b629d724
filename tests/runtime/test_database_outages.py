"""The database going away under a running execution, for real: a private PostgreSQL
cluster restarted mid-run (the shared server is never touched), and a SQLite file on a
tmpfs that fills up mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    by_step,
    finish,
    start_ax,
    step,
    unannounced,
    wait_until,
    workflow,
    write_workflow,
)

PG_BIN = (
    Path("/usr/lib/postgresql")
    / (
        sorted(os.listdir("/usr/lib/postgresql"))[-1]
        if Path("/usr/lib/postgresql").is_dir()
        else "?"
    )
    / "bin"
)


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl) on a free port."""

    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "data"
        self.port = port
        self.root = root
        self.options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", *args]
        subprocess.run(self._as_postgres(command), check=True, capture_output=True, timeout=60)

    def _as_postgres(self, command: list[str]) -> list[str]:
        # initdb and the server refuse to run as root
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(self._as_postgres(initdb), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-l", str(self.root / "server.log"), "start")

    def restart(self) -> None:
        self._pg_ctl(
            "-m", "fast", "-o", self.options, "-l", str(self.root / "server.log"), "restart"
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    # Not under pytest's tmp_path: the server's user must be able to reach its directory.
    root = Path(tempfile.mkdtemp(prefix="ax-test-pg-"))
    private = PrivateCluster(root, _free_port())
    try:
        private.create()
        private.start()
        yield private
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            private.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_a_postgresql_restart_mid_run_does_not_end_the_run(
    cluster: PrivateCluster, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    """`pg_ctl restart -m fast` mid-run once ended `ax workflow run` with `error: unexpected
    AdminShutdown` and exit 1. The store facade retries the lost connection while the lease
    is valid and the run carries on: every step completes exactly once, and the pool's
    reconnection chatter stays off stderr."""
    data = workflow([step(f"s{i}", "ax:sleep=0.25", [f"s{i - 1}"] if i else []) for i in range(8)])
    path = write_workflow(tmp_path, data)
    env = {**ax_env, "AX_DB": cluster.url, "AX_LEASE_SECONDS": "15"}
    runner = start_ax(["workflow", "run", str(path), "--format", "json"], env=env, cwd=tmp_path)
    wait_until(lambda: sum(1 for r in agent_runs(ledger) if r.end) >= 2)
    cluster.restart()
    code, out, err = finish(runner, timeout=90)
    assert code == 0, err
    document = json.loads(out)
    assert document["state"] == "completed"
    assert all(s["state"] == "completed" and s["attempts"] == 1 for s in document["steps"].values())
    assert all(len(runs) == 1 for runs in by_step(agent_runs(ledger)).values())
    assert unannounced(err) == [], err  # no error, no warning, no traceback: only the ID


DISK_KB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs of DISK_KB kilobytes (this machine kind runs tests as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_KB}k", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


BIG_OUTPUT = """\
import sys
sys.stdin.read()
print("x" * 3_000_000)
"""


def test_a_full_disk_says_so_and_recover_completes_once_space_is_freed(
    run_ax: RunAx, small_disk: Path, tmp_path: Path
) -> None:
    """A step output that does not fit on the SQLite volume ended the run with `error:
    unexpected OperationalError: database or disk is full` and exit 1. The store is intact
    and `recover` completes the execution once space is freed: the run says exactly that."""
    (tmp_path / "big.py").write_text(BIG_OUTPUT)
    data = workflow(
        [step("small", "x"), step("big", "x", ["small"], agent="big")],
        agents={"big": {"provider": "command", "command": [sys.executable, "big.py"]}},
    )
    path = write_workflow(tmp_path, data)
    db = small_disk / "ax.db"
    env = {"AX_DB": str(db)}
    run = run_ax("workflow", "run", str(path), env=env)
    run.assert_clean_error(1)
    with sqlite3.connect(db) as conn:
        (execution_id,) = conn.execute("SELECT id FROM workflow_executions").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    message = run.stderr.strip().splitlines()[-1]
    assert "is full" in message and "intact" in message
    assert execution_id in message and "ax workflow recover" in message
    status = json.loads(
        run_ax("workflow", "status", execution_id, "--format", "json", env=env).stdout
    )
    assert status["steps"]["small"]["state"] == "completed"

    # free space: the database moves to a bigger disk, as an operator would do
    moved = tmp_path / "moved.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", f"{moved}{suffix}")
    time.sleep(0.1)
    recovered = run_ax("workflow", "recover", "--format", "json", env={"AX_DB": str(moved)})
    assert recovered.returncode == 0, recovered.stderr
    (document,) = json.loads(recovered.stdout)
    assert document["executionId"] == execution_id and document["state"] == "completed"
    assert len(document["stepResults"]["big"]) == 3_000_000
