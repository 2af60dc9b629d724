"""What a runner costs while it waits for a person: `ax workflow run` of one approval gate,
its CPU time (user + system, from /proc/PID/stat) over `--seconds` of waiting, then an
approval and the run's end.

    python benchmarks/approval_wait.py [--seconds 60]

Prints one JSON line: the seconds waited, the CPU seconds the runner used meanwhile, and
that as a share of one core. The target (SPEC issue 14): under 0.5 s of CPU for 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import AX, HERE, write_workflow

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def gate_workflow() -> dict[str, object]:
    return {
        "name": "approval-wait",
        "steps": [
            {"key": "gate", "approval": {"message": "Go on?", "timeoutMs": 86_400_000}},
        ],
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (14th, 15th)


def wait_for_gate(db: Path, runner: subprocess.Popen[bytes], timeout_s: float = 60) -> str:
    """The execution ID once its gate waits (read from the store, not from the runner)."""
    from automatosx.store import open_store

    deadline = time.monotonic() + timeout_s
    store = open_store(str(db))
    try:
        while time.monotonic() < deadline:
            if runner.poll() is not None:
                raise RuntimeError(f"the runner exited {runner.returncode} before its gate waited")
            pending = store.pending_approvals()
            if pending:
                return pending[0].approval.execution_id
            time.sleep(0.05)
    finally:
        store.close()
    raise TimeoutError("the gate did not wait in time")


def measure(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "approval.db"
        env = {**os.environ, "AX_DB": str(db), "AX_USER": "bench"}
        path = write_workflow(gate_workflow(), Path(tmp))
        runner = subprocess.Popen(
            [AX, "workflow", "run", str(path), "--format", "json"],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            execution_id = wait_for_gate(db, runner)
            time.sleep(0.5)  # past the turn that opened the gate: only the waiting counts
            before, start = cpu_seconds(runner.pid), time.monotonic()
            time.sleep(seconds)
            used, waited = cpu_seconds(runner.pid) - before, time.monotonic() - start
            approve = subprocess.run(
                [AX, "workflow", "approve", execution_id, "gate"],
                env=env,
                capture_output=True,
                text=True,
            )
            if approve.returncode != 0:
                raise RuntimeError(f"approve exited {approve.returncode}: {approve.stderr}")
            out, _ = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
    state = json.loads(out)["state"]
    if runner.returncode != 0 or state != "completed":
        raise RuntimeError(f"the run ended {state} (exit {runner.returncode})")
    return {
        "waited_s": round(waited, 3),
        "cpu_s": round(used, 3),
        "cpu_share_of_a_core": round(used / waited, 5),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to wait")
    options = parser.parse_args()
    print(json.dumps(measure(options.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
