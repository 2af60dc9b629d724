"""Running `ax` as a user would, and reading back what it did.

Each run is a fresh process with its own SQLite file, so peak RSS (from `getrusage` of the
waited child) and timings are the product's, start-up included where a figure says so.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AX = str(Path(sys.executable).with_name("ax"))

_RSS_PROBE = (
    "import resource, subprocess, sys; "
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE); "
    "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr); "
    "sys.stderr.write('\\nAX_BENCH_RSS_KB=%d\\n' % "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"
)


@dataclass
class AxRun:
    returncode: int
    wall_s: float
    peak_rss_mb: float
    document: dict[str, Any] | None
    stderr: str


def write_workflow(data: dict[str, Any], directory: Path) -> Path:
    path = directory / f"{data['name']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_ax(args: list[str], *, env: dict[str, str] | None = None, db: Path | None = None) -> AxRun:
    """Run `ax ARGS` from the benchmarks folder (so `bench_agents` imports) with its own DB."""
    with tempfile.TemporaryDirectory() as tmp:
        full_env = {**os.environ, "AX_DB": str(db or Path(tmp) / "bench.db"), **(env or {})}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, AX, *args],
            cwd=HERE,
            env=full_env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    stderr, _, rss = proc.stderr.rpartition("AX_BENCH_RSS_KB=")
    document = None
    if proc.stdout.strip().startswith("{"):
        document = json.loads(proc.stdout)
    return AxRun(proc.returncode, wall, int(rss.strip() or 0) / 1024, document, stderr)


def wall_time_s(args: list[str], repeat: int = 7) -> float:
    """Median wall time of a short `ax` command."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([AX, *args], cwd=HERE, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def wait_for_line(path: Path, count: int, timeout_s: float = 120.0) -> str:
    """The `count`-th line of a marker file an agent appends to, once it is there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) >= count:
                return lines[count - 1]
        time.sleep(0.002)
    raise TimeoutError(f"{path} did not get {count} line(s) in {timeout_s} s")


def peak_rss_mb_of_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
