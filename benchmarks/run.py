"""One command for every benchmark: `make bench` (or `python benchmarks/run.py`).

Prints each figure with its target and its ratio to the floors measured in the same run, then
writes `benchmarks/results/latest.json` and the table in `docs/benchmarks.md`. If
`benchmarks/baseline.json` exists, each figure is also compared with the recorded baseline.
Figures are medians of `--repeat` runs (default 3); differences under ~1.5x are noise here.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import approval_wait
import floors
import shapes
import stats
import ui_server
import workers
from measure import AX, HERE, AxRun, run_ax, wait_for_line, wall_time_s, write_workflow

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
BASELINE = ROOT / "benchmarks" / "baseline.json"
DOC = ROOT / "docs" / "benchmarks.md"

Figures = dict[str, float]


def _run_shape(data: dict[str, Any], env: dict[str, str] | None = None) -> AxRun:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_workflow(data, Path(tmp))
        run = run_ax(["workflow", "run", str(path), "--format", "json"], env=env)
    if run.returncode != 0 or run.document is None:
        raise RuntimeError(f"run of {data['name']} exited {run.returncode}: {run.stderr[-500:]}")
    return run


def bench_chain() -> Figures:
    """The chain's headline figures use an async no-op: like the peers' no-op nodes and
    steps (which LangGraph and DBOS run on their own thread), it costs the orchestrator
    nothing but the call. A sync no-op adds the hand-off to a worker thread that sync user
    code gets (`callable_threads`), reported beside it against the thread round-trip floor."""
    full = {"AX_DB_SYNC": "full"}
    shapes_by_figure = {
        "chain_1000_ms_per_step": (shapes.chain(1000, agent="anoop"), None),
        "chain_1000_sync_callable_ms_per_step": (shapes.chain(1000), None),
        "chain_1000_full_ms_per_step": (shapes.chain(1000, agent="anoop"), full),
        "chain_1000_full_sync_callable_ms_per_step": (shapes.chain(1000), full),
    }
    figures: Figures = {}
    for name, (data, env) in shapes_by_figure.items():
        document = _run_shape(data, env=env).document or {}  # _run_shape raises without one
        figures[name] = document["durationMs"] / 1000
    figures["chain_200_peak_rss_mb"] = _run_shape(shapes.chain(200)).peak_rss_mb
    return figures


def bench_fan_out() -> Figures:
    big = _run_shape(shapes.fan_out(1000))
    small = _run_shape(shapes.fan_out(200))
    assert big.document
    return {
        "fanout_1000_steps_per_s": 1002 / (big.document["durationMs"] / 1000),
        "fanout_200_peak_rss_mb": small.peak_rss_mb,
    }


def bench_for_each() -> Figures:
    """The 1,000-wide fan-out built at run time by a forEach (as many steps, the same
    parallelism as `fan-out`), and what `if` costs: a conditional chain against the plain
    one, and the expression evaluation itself, in-process."""
    big = _run_shape(shapes.for_each(1000))
    static = _run_shape(shapes.fan_out(1000))  # measured back to back, for the ratio
    assert big.document and static.document
    plain = _run_shape(shapes.chain(1000, agent="anoop")).document or {}
    conditional = _run_shape(shapes.conditional_chain(1000)).document or {}
    return {
        "foreach_1000_steps_per_s": 1002 / (big.document["durationMs"] / 1000),
        "foreach_over_static_fanout": static.document["durationMs"] / big.document["durationMs"],
        "foreach_1000_peak_rss_mb": big.peak_rss_mb,
        "if_chain_us_per_step": (conditional["durationMs"] - plain["durationMs"]),
        "if_evaluation_us": _if_evaluation_us(),
    }


def _if_evaluation_us(rounds: int = 2000) -> float:
    """One `if` of the conditional chain, compiled once, evaluated as the engine does (the
    upstream step's value and the context already converted)."""
    from automatosx.definition.expressions import cel_value, compile_expression, step_value

    expression, issues = compile_expression(
        'steps.s0.state == "completed" && steps.s0.output == "ok"',
        path="if",
        is_upstream=lambda key: True,
        known_steps=frozenset({"s0"}),
    )
    assert expression is not None, issues
    context, steps = cel_value({}), {"s0": step_value("ok", "completed")}
    expression.evaluate(context, steps)
    start = time.perf_counter()
    for _ in range(rounds):
        expression.evaluate(context, steps)
    return (time.perf_counter() - start) / rounds * 1e6


def bench_diamond() -> Figures:
    run = _run_shape(shapes.diamond())
    assert run.document
    makespan_s = run.document["durationMs"] / 1000
    return {"diamond_makespan_over_critical_path": makespan_s / shapes.DIAMOND_CRITICAL_PATH_S}


def bench_large() -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_workflow(shapes.layered(10_000), Path(tmp))
        validate = run_ax(["workflow", "validate", str(path)])
        if validate.returncode != 0:
            raise RuntimeError(validate.stderr[-500:])
    run = _run_shape(shapes.layered(10_000))
    return {"large_10000_validate_s": validate.wall_s, "large_10000_peak_rss_mb": run.peak_rss_mb}


def bench_status() -> Figures:
    """`ax workflow status` of a completed 10,000-step execution, table and JSON: what a
    person or a script pays to look at a large run (linear in its steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "status.db"
        path = write_workflow(shapes.layered(10_000), Path(tmp))
        run = run_ax(["workflow", "run", str(path), "--format", "json"], db=db)
        if run.document is None:
            raise RuntimeError(run.stderr[-500:])
        status = ["workflow", "status", run.document["executionId"]]
        table = [run_ax(status, db=db) for _ in range(3)]
        json_runs = [run_ax([*status, "--format", "json"], db=db) for _ in range(3)]
    for done in (*table, *json_runs):
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-500:])
    return {
        "status_10000_table_s": statistics.median(r.wall_s for r in table),
        "status_10000_json_s": statistics.median(r.wall_s for r in json_runs),
    }


def bench_startup() -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_workflow(shapes.chain(100), Path(tmp))
        validate_s = wall_time_s(["workflow", "validate", str(path)])
    version_s = wall_time_s(["--version"])
    firsts = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as tmp:
            mark = Path(tmp) / "mark"
            path = write_workflow(shapes.first_step(), Path(tmp))
            env = {**os.environ, "AX_DB": str(Path(tmp) / "b.db"), "AX_BENCH_MARK": str(mark)}
            start = time.time()
            proc = subprocess.run(
                [AX, "workflow", "run", str(path), "--format", "json"],
                cwd=HERE,
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-500:])
            firsts.append(float(mark.read_text().split()[0]) - start)
    return {
        "ax_version_s": version_s,
        "ax_validate_100_s": validate_s,
        "start_to_first_step_s": statistics.median(firsts),
    }


HTTP_CALLS = 500
HTTP_SERVER_DELAY_S = 0.25


def bench_http() -> Figures:
    """500 concurrent `openai` steps against a loopback server answering after 0.25 s."""
    server = subprocess.Popen(
        [sys.executable, str(HERE / "openai_server.py"), "--delay", str(HTTP_SERVER_DELAY_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        data = shapes.http_calls(HTTP_CALLS, f"http://127.0.0.1:{port}/v1")
        with tempfile.TemporaryDirectory() as tmp:
            path = write_workflow(data, Path(tmp))
            proc = subprocess.run(
                [sys.executable, str(HERE / "http_calls.py"), str(path), str(Path(tmp) / "h.db")],
                cwd=HERE,
                capture_output=True,
                text=True,
            )
    finally:
        server.kill()
        server.wait()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-800:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["state"] != "completed":
        raise RuntimeError(f"the HTTP run ended {result['state']}")
    return {
        "http_500_calls_per_s": HTTP_CALLS / (result["durationMs"] / 1000),
        "http_500_makespan_over_server_delay": result["durationMs"] / 1000 / HTTP_SERVER_DELAY_S,
        "http_500_loop_lag_max_ms": result["lagMaxMs"],
        "http_500_loop_lag_p99_ms": result["lagP99Ms"],
        "http_500_peak_rss_mb": result["peakRssMb"],
    }


RESUME_DONE_STEPS = 200


def bench_resume() -> Figures:
    """SIGKILL a runner inside a step (after 200 completed ones), then time `ax workflow
    resume` from its launch to the start of the re-run step."""
    with tempfile.TemporaryDirectory() as tmp:
        mark = Path(tmp) / "mark"
        path = write_workflow(shapes.resumable_chain(RESUME_DONE_STEPS), Path(tmp))
        env = {**os.environ, "AX_DB": str(Path(tmp) / "r.db"), "AX_BENCH_MARK": str(mark)}
        runner = subprocess.Popen(
            [AX, "workflow", "run", str(path), "--format", "json"],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            execution_id = wait_for_line(mark, 1).split()[2]
        finally:
            runner.send_signal(signal.SIGKILL)
            runner.wait()
        start = time.time()
        resume = subprocess.run(
            [AX, "workflow", "resume", execution_id, "--format", "json"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
        )
        if resume.returncode != 0:
            raise RuntimeError(f"resume exited {resume.returncode}: {resume.stderr[-500:]}")
        rerun_at = float(mark.read_text().splitlines()[1].split()[0])
    return {"resume_to_first_rerun_step_s": rerun_at - start}


def bench_approval() -> Figures:
    """A runner waiting 60 s on an approval gate: the CPU it uses meanwhile (no polling
    loop should cost more than a few queries a second)."""
    return {"approval_wait_60s_cpu_s": approval_wait.measure(60.0)["cpu_s"]}


CACHE_STEPS = 1000


def bench_cache() -> Figures:
    """A cache hit against a no-op step: the second run of a chain of cached steps (every
    step a hit: a key lookup, no model call) beside a chain of as many async no-op steps,
    measured back to back."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cache.db"
        path = write_workflow(shapes.cached_chain(CACHE_STEPS, cache=True), Path(tmp))
        warm = run_ax(["workflow", "run", str(path), "--format", "json"], db=db)
        hits = run_ax(["workflow", "run", str(path), "--format", "json"], db=db)
    for run in (warm, hits):
        if run.returncode != 0 or run.document is None:
            raise RuntimeError(f"the cached chain exited {run.returncode}: {run.stderr[-500:]}")
    assert hits.document is not None
    if not all(step.get("cached") for step in hits.document["steps"].values()):
        raise RuntimeError("the second run of the cached chain was not answered from the cache")
    noop = _run_shape(shapes.cached_chain(CACHE_STEPS, cache=False)).document or {}
    hit_ms = hits.document["durationMs"] / CACHE_STEPS
    noop_ms = noop["durationMs"] / CACHE_STEPS
    return {
        "cache_hit_chain_1000_ms_per_step": hit_ms,
        "cache_hit_over_noop_step": hit_ms / noop_ms,
    }


def bench_stats() -> Figures:
    """`ax workflow stats` over 10,000 executions (50,000 step instances, 100,000 events)
    seeded by SQL: the store's queries and the document in-process, and the whole command."""
    measured = stats.measure(10_000, 100_000)
    return {
        "stats_10000_query_ms": measured["stats_query_ms"],
        "stats_10000_json_s": measured["stats_json_s"],
    }


def bench_ui() -> Figures:
    """`ax ui` over the same 10,000 executions: API list, status and stats, the execution
    page, an event's way to an open stream, and the CPU of five idle streams."""
    return ui_server.measure(10_000)


def bench_workers() -> Figures:
    """`ax worker` processes on the real PostgreSQL: I/O-bound throughput with 1, 2, 4 and
    8 workers, no-op executions through the queue and their claim latency, and the time
    from a worker's SIGKILL to its step running again elsewhere."""
    return workers.measure()


BENCHMARKS: dict[str, Callable[[], Figures]] = {
    "chain": bench_chain,
    "fan-out": bench_fan_out,
    "for-each": bench_for_each,
    "diamond": bench_diamond,
    "large": bench_large,
    "status": bench_status,
    "startup": bench_startup,
    "http": bench_http,
    "resume": bench_resume,
    "cache": bench_cache,
    "approval": bench_approval,
    "stats": bench_stats,
    "ui": bench_ui,
    "workers": bench_workers,
}

# figure -> (target description, check(value, floors) -> bool or None)
TARGETS: dict[str, tuple[str, Callable[[float, Figures], bool]]] = {
    "chain_1000_ms_per_step": ("<= 0.2 ms", lambda v, f: v <= 0.2),
    "chain_1000_full_ms_per_step": (
        "<= 2x FULL commit floor",
        lambda v, f: v <= 2 * f["sqlite_commit_wal_full_ms"],
    ),
    "fanout_1000_steps_per_s": (">= 2x LangGraph (2,890/s)", lambda v, f: v >= 2 * 201 / 0.139),
    "diamond_makespan_over_critical_path": ("<= 1.01", lambda v, f: v <= 1.01),
    "start_to_first_step_s": ("< 0.225 s (half of DBOS)", lambda v, f: v < 0.225),
    "ax_version_s": ("<= 3x python -c pass", lambda v, f: v <= 3 * f["python_startup_s"]),
    "chain_200_peak_rss_mb": ("< 60 MB", lambda v, f: v < 60),
    "fanout_200_peak_rss_mb": ("< 60 MB", lambda v, f: v < 60),
    "large_10000_peak_rss_mb": ("< 150 MB", lambda v, f: v < 150),
    "large_10000_validate_s": ("< 1 s", lambda v, f: v < 1.0),
    "status_10000_table_s": ("< 0.5 s", lambda v, f: v < 0.5),
    "status_10000_json_s": ("< 0.5 s", lambda v, f: v < 0.5),
    "http_500_loop_lag_max_ms": ("< 50 ms", lambda v, f: v < 50),
    "foreach_1000_peak_rss_mb": ("< 100 MB", lambda v, f: v < 100),
    "foreach_over_static_fanout": (">= 0.8 (steps/s of the static fan-out)", lambda v, f: v >= 0.8),
    "if_evaluation_us": ("< 50 us", lambda v, f: v < 50),
    "cache_hit_over_noop_step": ("<= 1.5 (a no-op step's time)", lambda v, f: v <= 1.5),
    "approval_wait_60s_cpu_s": ("< 0.5 s", lambda v, f: v < 0.5),
    "stats_10000_query_ms": ("< 500 ms", lambda v, f: v < 500),
    "ui_api_list_p95_ms": ("< 50 ms", lambda v, f: v < 50),
    "ui_api_status_p95_ms": ("< 50 ms", lambda v, f: v < 50),
    "ui_api_stats_ms": ("< 500 ms", lambda v, f: v < 500),
    "ui_execution_page_p95_ms": ("< 200 ms", lambda v, f: v < 200),
    "ui_event_to_stream_ms": ("< 500 ms", lambda v, f: v < 500),
    "ui_idle_5_streams_cpu_share": ("< 0.01 of a core", lambda v, f: v < 0.01),
    "workers_4_over_1": (">= 3.5 (4 workers over 1, 0.1 s steps)", lambda v, f: v >= 3.5),
}


def _median_figures(fn: Callable[[], Figures], repeat: int) -> Figures:
    runs = [fn() for _ in range(repeat)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--save-baseline", action="store_true")
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="measure the automatosx package under this src/ folder instead (e.g. a "
        "`git worktree` of an older commit); results go to --output, docs are left alone",
    )
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON")
    options = parser.parse_args()

    source = ROOT / "src"
    if options.src is not None:
        source = options.src.resolve()
        os.environ["PYTHONPATH"] = str(source)  # every ax and helper process imports it
    # An installed package has its bytecode compiled (pip does it); a development checkout
    # run with PYTHONDONTWRITEBYTECODE=1 (as here) would recompile every module of ax in
    # every process and measure the compiler instead of ax.
    compileall.compile_dir(str(source / "automatosx"), quiet=1)
    compileall.compile_file(str(ROOT / "benchmarks" / "bench_agents.py"), quiet=1)
    load_before = os.getloadavg()[0]
    floor_figures = floors.measure()
    figures: Figures = {}
    errors: dict[str, str] = {}
    for name, fn in BENCHMARKS.items():
        if options.only and name not in options.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            figures.update(_median_figures(fn, options.repeat))
        except Exception as exc:  # one broken shape must not hide the others' figures
            traceback.print_exc()
            errors[name] = str(exc)
    baseline = json.loads(BASELINE.read_text())["figures"] if BASELINE.exists() else {}
    report = {
        "machine": _machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "source": str(source),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "repeat": options.repeat,
        "floors": floor_figures,
        "figures": figures,
        "errors": errors,
    }
    output = options.output or RESULTS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    if options.save_baseline:
        _save_baseline(report, partial=bool(options.only))
    table = _table(figures, floor_figures, baseline)
    print(table)
    for name, message in errors.items():
        print(f"error in {name}: {message}")
    if options.src is None and options.output is None and not options.only:
        _write_doc(report, table)  # the page's table shows a whole run
    return 1 if errors else 0


def _save_baseline(report: dict[str, Any], *, partial: bool) -> None:
    """The run becomes the baseline; a run of some benchmarks (`--only`) adds or replaces
    only its own figures, each stamped with when it was measured (`figures_when`)."""
    if not partial or not BASELINE.exists():
        BASELINE.write_text(json.dumps(report, indent=2) + "\n")
        return
    baseline = json.loads(BASELINE.read_text())
    baseline["figures"].update(report["figures"])
    baseline.setdefault("figures_when", {}).update(
        {key: report["when"] for key in report["figures"]}
    )
    BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    python = platform.python_version()
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((ln.split(":", 1)[1].strip() for ln in handle if "model name" in ln), "")
    except OSError:
        pass
    cpu = f" ({model})" if model else ""
    return f"{platform.machine()}{cpu}, {cpus} cores, Python {python}, {platform.system()}"


# figure -> the floors it is compared with (its value divided by their sum)
FLOOR_OF: dict[str, tuple[str, ...]] = {
    "chain_1000_ms_per_step": ("sqlite_commit_wal_normal_ms",),
    "chain_1000_sync_callable_ms_per_step": ("sqlite_commit_wal_normal_ms", "thread_round_trip_ms"),
    "chain_1000_full_ms_per_step": ("sqlite_commit_wal_full_ms",),
    "chain_1000_full_sync_callable_ms_per_step": (
        "sqlite_commit_wal_full_ms",
        "thread_round_trip_ms",
    ),
    "ax_version_s": ("python_startup_s",),
    "ax_validate_100_s": ("python_startup_s",),
    "start_to_first_step_s": ("python_startup_s",),
    "resume_to_first_rerun_step_s": ("python_startup_s",),
    "stats_10000_query_ms": ("python_loop_1e6_ms",),  # SQLite's sorts: CPU-bound
}


def _versus_floor(key: str, value: float, floor_figures: Figures) -> str:
    names = FLOOR_OF.get(key, ())
    if not names or any(name not in floor_figures for name in names):
        return "-"
    return f"{value / sum(floor_figures[name] for name in names):.1f}x {' + '.join(names)}"


def _table(figures: Figures, floor_figures: Figures, baseline: Figures) -> str:
    lines = [
        "| figure | value | target | met | vs floor | vs baseline |",
        "|---|---|---|---|---|---|",
    ]
    for key, value in figures.items():
        target, check = TARGETS.get(key, ("", lambda v, f: True))
        met = "yes" if check(value, floor_figures) else "NO"
        base = baseline.get(key)
        versus = f"{value / base:.2f}x" if base else "-"
        to_floor = _versus_floor(key, value, floor_figures)
        lines.append(
            f"| {key} | {value:.4g} | {target} | {met if target else '-'} | {to_floor} | {versus} |"
        )
    lines.append("")
    lines.append("| floor | value |")
    lines.append("|---|---|")
    lines.extend(f"| {key} | {value:.4g} |" for key, value in floor_figures.items())
    return "\n".join(lines)


def _write_doc(report: dict[str, Any], table: str) -> None:
    marker = "<!-- results -->"
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{marker}\n"
    head = text.split(marker)[0]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(
        f"{head}{marker}\n\nLast run: {report['when']} on {report['machine']}, "
        f"medians of {report['repeat']}, 1-minute load average "
        f"{report['load_average_1min']['before']:.1f} before and "
        f"{report['load_average_1min']['after']:.1f} after.\n\n{table}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
