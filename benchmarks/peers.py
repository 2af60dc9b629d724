"""The same shapes on LangGraph and DBOS, side by side with ax's latest figures.

`python benchmarks/peers.py` creates `benchmarks/peers/.venv` on first use (pinned versions
from `benchmarks/peers/requirements.txt`; never the project's environment, never a test
dependency), runs each peer's shapes in fresh processes with durable state in a SQLite file,
and prints each figure next to ax's from `benchmarks/results/latest.json` (run
`benchmarks/run.py` first, ideally just before, since this machine's speed drifts). Results
go to `benchmarks/results/peers.json`. Prefect is left out: it needs its own server process
and takes seconds per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
VENV = PEERS / ".venv"
RESULTS = HERE / "results"
SCRIPTS = {"langgraph": "langgraph_shapes.py", "dbos": "dbos_shapes.py"}
CHAIN, FANOUT, SMALL = 1000, 1000, 200
DIAMOND_CRITICAL_PATH_S = 1.1


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} (first run only) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(PEERS / "requirements.txt")],
            check=True,
        )
    return python


def run_shape(python: Path, peer: str, shape: str, size: int) -> tuple[float, float, float]:
    """(seconds inside the run, peak RSS MB, spawn-to-first-step seconds or 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        mark = Path(tmp) / "mark"
        start = time.time()
        proc = subprocess.run(
            [str(python), str(PEERS / SCRIPTS[peer]), shape, str(size), f"{tmp}/db", str(mark)],
            capture_output=True,
            text=True,
            cwd=tmp,
            env={**os.environ, "DBOS__APPVERSION": "bench"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{peer} {shape} exited {proc.returncode}: {proc.stderr[-600:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        first = float(mark.read_text().split()[0]) - start if mark.exists() else 0.0
    return result["seconds"], result["rssMb"], first


def figures(python: Path, peer: str) -> dict[str, float]:
    chain_s, _, _ = run_shape(python, peer, "chain", CHAIN)
    _, chain_rss, _ = run_shape(python, peer, "chain", SMALL)
    fanout_s, _, _ = run_shape(python, peer, "fanout", FANOUT)
    _, fanout_rss, _ = run_shape(python, peer, "fanout", SMALL)
    diamond_s, _, _ = run_shape(python, peer, "diamond", 1)
    _, _, first = run_shape(python, peer, "first", 1)
    return {
        "chain_1000_ms_per_step": chain_s * 1000 / CHAIN,
        "chain_200_peak_rss_mb": chain_rss,
        "fanout_1000_steps_per_s": (FANOUT + 2) / fanout_s,
        "fanout_200_peak_rss_mb": fanout_rss,
        "diamond_makespan_over_critical_path": diamond_s / DIAMOND_CRITICAL_PATH_S,
        "start_to_first_step_s": first,
    }


def median_of(repeat: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    runs = [fn() for _ in range(repeat)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(SCRIPTS), default=None)
    options = parser.parse_args()
    python = ensure_venv()
    peers = {}
    for peer in SCRIPTS:
        if options.only and peer not in options.only:
            continue
        print(f"running {peer} ...", file=sys.stderr, flush=True)
        peers[peer] = median_of(options.repeat, lambda peer=peer: figures(python, peer))
    latest = RESULTS / "latest.json"
    ours = json.loads(latest.read_text())["figures"] if latest.exists() else {}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.json").write_text(
        json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "peers": peers}, indent=2) + "\n"
    )
    names = list(peers)
    print("| figure | ax | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    # ax's chain headline is an async no-op (run on ax's own thread, like the peers' nodes);
    # its sync-callable chain, which adds a hand-off to a worker thread, is shown against the
    # same peer figures too.
    rows = [(key, key) for key in next(iter(peers.values()), {})]
    rows.insert(1, ("chain_1000_ms_per_step", "chain_1000_sync_callable_ms_per_step"))
    for key, ours_key in rows:
        value = ours.get(ours_key)
        cells = []
        for name in names:
            theirs = peers[name][key]
            ratio = f" ({value / theirs:.2f}x)" if value and theirs else ""
            cells.append(f"{theirs:.4g}{ratio}")
        shown = f"{value:.4g}" if value is not None else "-"
        label = key if ours_key == key else f"{key} (ax: sync callable)"
        print(f"| {label} | {shown} | " + " | ".join(cells) + " |")
    print("\n(ax value / peer value in brackets: below 1 is better for times and memory,")
    print("above 1 is better for steps per second.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
