"""`make bench` keeps working: the benchmark command runs real shapes through `ax` and writes
every figure with its floors. Nothing here asserts a timing (timings belong in the benchmark's
output, and this shared machine's speed drifts); these only check the machinery.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_command_measures_the_chain_shapes_and_the_floors(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    docs_before = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    command = ["benchmarks/run.py", "--repeat", "1", "--only", "chain", "--output", str(output)]
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["errors"] == {}
    figures, floors = report["figures"], report["floors"]
    assert set(figures) == {
        "chain_1000_ms_per_step",
        "chain_1000_sync_callable_ms_per_step",
        "chain_1000_full_ms_per_step",
        "chain_1000_full_sync_callable_ms_per_step",
        "chain_200_peak_rss_mb",
    }
    assert all(value > 0 for value in figures.values())
    assert {
        "sqlite_commit_wal_normal_ms",
        "sqlite_commit_wal_full_ms",
        "thread_round_trip_ms",
        "python_startup_s",
    } <= set(floors)
    # The printed table compares each chain figure with its floors, the sync ones with the
    # commit floor plus the thread round trip.
    assert "sqlite_commit_wal_normal_ms + thread_round_trip_ms" in proc.stdout
    assert "| chain_1000_full_ms_per_step |" in proc.stdout
    # An --output run leaves the committed results page alone.
    assert (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8") == docs_before
