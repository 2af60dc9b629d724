"""`ax workflow submit | wait` and `ax worker` (SPEC section 9) with real worker processes:
several executions shared by two workers, the exit codes of `wait`, a worker killed with
SIGKILL mid-step (its execution resumes on another; an external ledger shows every
completed step ran once), SIGTERM draining, cancel and pause/resume of a submitted
execution, and the refusals (SQLite, a wait that times out)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    process_exists,
    read_ledger,
    step,
    workflow,
    write_workflow,
)
from tests.web.conftest import Serve
from tests.worker.conftest import Workers, registered_workers, status, submit, wait_until
from tests.worker.private_postgres import private_cluster


def owners(run_ax: RunAx, execution_id: str) -> list[str]:
    """The workers (host:pid) whose runners started or resumed the execution."""
    result = run_ax("workflow", "events", execution_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    found = []
    for event in json.loads(result.stdout):
        if event["type"] in ("workflow_started", "workflow_resumed"):
            found.append(":".join(event["data"]["owner"].split(":")[:2]))
    return found


def test_submitted_executions_are_shared_by_the_workers(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path, pg_url: str
) -> None:
    ids = [
        submit(run_ax, tmp_path, [step("a", "ax:sleep=0.4"), step("b", "ax:sleep=0.1", ["a"])])
        for _ in range(4)
    ]
    assert status(run_ax, ids[0])["state"] == "queued"  # nobody runs it yet
    workers = [start_worker("--concurrency", "1"), start_worker("--concurrency", "1")]
    wait_until(lambda: registered_workers(pg_url) == 4)  # both (a turn and an attempt loop each)
    for execution_id in ids:
        waited = run_ax("workflow", "wait", execution_id, "--timeout", "30", "--format", "json")
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["state"] == "completed"
    ran_on = {line["ppid"] for line in read_ledger(ledger) if line["event"] == "start"}
    assert ran_on == {w.pid for w in workers}  # both ran some (a step's parent: its worker)
    runs = agent_runs(ledger)
    assert len(runs) == 8 and all(run.end is not None for run in runs)  # each step once


def test_wait_exits_like_run(run_ax: RunAx, tmp_path: Path, start_worker: Workers) -> None:
    failing = submit(run_ax, tmp_path, [step("x", "ax:fail-always")], name="failing")
    start_worker()
    waited = run_ax("workflow", "wait", failing, "--timeout", "30")
    assert waited.returncode == 1, waited.stderr
    assert "failed" in waited.stdout


def test_a_worker_killed_mid_step_loses_nothing(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    started, go = tmp_path / "b-started", tmp_path / "go"
    execution_id = submit(
        run_ax, tmp_path,
        [step("a"), step("b", f"ax:announce={started} ax:wait-file={go}", ["a"]),
         step("c", deps=["b"])],
    )  # fmt: skip
    first = start_worker()
    wait_until(started.exists)
    os.killpg(first.pid, signal.SIGKILL)
    (interrupted,) = [run for run in agent_runs(ledger) if run.step == "b"]
    os.killpg(os.getpgid(interrupted.pid), signal.SIGKILL)  # its step's group: a lost machine
    killed_at = time.monotonic()
    started.unlink()
    second = start_worker()
    wait_until(started.exists)  # b runs again, on the second worker
    taken_over_s = time.monotonic() - killed_at
    go.touch()
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr
    runs = agent_runs(ledger)
    assert [(r.step, r.end is not None) for r in runs] == [
        ("a", True),
        ("b", False),
        ("b", True),
        ("c", True),
    ]  # a completed step never ran again; the interrupted one ran to its end once
    assert taken_over_s < 3 * 0.3 + 5  # within 3 heartbeats, plus the second's start-up
    ran_b_on = [
        line["ppid"]
        for line in read_ledger(ledger)
        if line["event"] == "start" and line["step"] == "b"
    ]
    assert ran_b_on[0] == first.pid and ran_b_on[-1] == second.pid  # on the second again
    steps = status(run_ax, execution_id)["steps"]
    assert (steps["a"]["attempts"], steps["b"]["attempts"], steps["c"]["attempts"]) == (1, 2, 1)


def test_a_step_that_kills_its_worker_fails_after_three_workers(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """A step that takes down whatever runs it does not go round the workers for ever: the
    third worker lost to it fails it (`worker_lost`, not retried), and the run ends."""
    execution_id = submit(
        run_ax, tmp_path,
        [step("a"), step("poison", "ax:kill-runner", ["a"]), step("c", deps=["poison"])],
    )  # fmt: skip
    started = [start_worker()]

    def ended() -> bool:
        if started[-1].poll() is not None:  # as a supervisor (systemd) would: a new one
            started.append(start_worker())
        return status(run_ax, execution_id)["state"] in ("completed", "failed")

    wait_until(ended, timeout=60)
    document = status(run_ax, execution_id)
    assert document["state"] == "failed"
    poison = document["steps"]["poison"]
    assert (poison["state"], poison["errorKind"]) == ("failed", "worker_lost")
    assert poison["attempts"] == 3
    assert "lost 3 times" in poison["error"]
    assert document["steps"]["c"]["state"] != "completed"
    ran_on = [line["ppid"] for line in read_ledger(ledger) if line["step"] == "poison"]
    assert ran_on == [proc.pid for proc in started[:3]]  # once on each of three workers
    assert all(proc.poll() is not None for proc in started[:3])
    assert started[-1].poll() is None  # the worker after them lives on


def test_cancel_reaches_the_worker(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    started = tmp_path / "started"
    execution_id = submit(run_ax, tmp_path, [step("long", f"ax:announce={started} ax:sleep=30")])
    start_worker()
    wait_until(started.exists)
    cancelled = run_ax("workflow", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "10")
    assert waited.returncode == 3, waited.stderr
    (run,) = agent_runs(ledger)
    wait_until(lambda: not _alive(run.pid), timeout=5)  # the worker killed the step


def test_pause_and_resume_a_submitted_execution(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers
) -> None:
    """Paused, then resumed through the workers; `config.timeout` counts from the resume
    (1.5 s of `a`, 1.5 s paused, then `b`: past 2.5 s in all, within it since the resume)."""
    started = tmp_path / "started"
    execution_id = submit(
        run_ax, tmp_path,
        [step("a", f"ax:announce={started} ax:sleep=1.5"), step("b", "ax:sleep=0.5", ["a"])],
        config={"timeout": 2500},
    )  # fmt: skip
    start_worker()
    wait_until(started.exists)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "10")
    assert waited.returncode == 4, waited.stderr  # paused
    time.sleep(1.5)
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"executionId": execution_id, "state": "queued"}
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr


def test_the_workflow_timeout_ends_a_submitted_execution(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """Past `config.timeout` the execution fails and what runs is killed on its worker."""
    execution_id = submit(
        run_ax, tmp_path,
        [step("a", "ax:sleep=0.05"), step("long", "ax:sleep=30", ["a"]),
         step("next", deps=["long"])],
        config={"timeout": 1500},
    )  # fmt: skip
    start_worker()
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "20")
    assert waited.returncode == 1, waited.stderr
    document = status(run_ax, execution_id)
    assert "timed out" in document["error"]
    steps = document["steps"]
    assert [steps[key]["state"] for key in ("a", "long", "next")] == [
        "completed",
        "cancelled",
        "cancelled",
    ]
    wait_until(lambda: all(not process_exists(run.pid) for run in agent_runs(ledger)), 10)
    assert [r.step for r in agent_runs(ledger) if r.end is None] == ["long"]


def test_sigterm_drains_and_hands_the_execution_on(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    started = tmp_path / "started"
    execution_id = submit(run_ax, tmp_path, [step("long", f"ax:announce={started} ax:sleep=30")])
    first = start_worker("--grace", "0.5")
    wait_until(started.exists)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0  # drained: stopped its run after the grace period
    assert status(run_ax, execution_id)["state"] == "executing"  # not failed, not cancelled
    started.unlink()
    start_worker()
    wait_until(started.exists)  # another worker runs it again
    assert [r.step for r in agent_runs(ledger)] == ["long", "long"]
    run_ax("workflow", "cancel", execution_id)


def test_workers_and_submit_need_postgresql(run_ax: RunAx, tmp_path: Path) -> None:
    sqlite = {"AX_DB": str(tmp_path / "ax.db")}
    worker = run_ax("worker", env=sqlite)
    worker.assert_clean_error(2)
    assert "workers need PostgreSQL" in worker.stderr
    path = tmp_path / "w.yaml"
    path.write_text("name: w\nsteps:\n  - {key: a, agent: backend, prompt: x}\n")
    submitted = run_ax("workflow", "submit", str(path), env=sqlite)
    submitted.assert_clean_error(2)
    assert not (tmp_path / "ax.db").exists() or "queued" not in submitted.stdout


def test_wait_gives_up_after_its_timeout(run_ax: RunAx, tmp_path: Path) -> None:
    execution_id = submit(run_ax, tmp_path, [step("a")])  # no worker runs
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "0.3")
    waited.assert_clean_error(2)
    assert "still queued after 0.3 s" in waited.stderr
    run_ax("workflow", "wait", "nope-nope-nope").assert_clean_error(2)
    (row,) = [line for line in run_ax("workflow", "runs").stdout.splitlines() if "queued" in line]
    assert "not started" in row and "ago" not in row  # queued: it has not started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_frozen_worker_is_fenced_when_it_wakes(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """SIGSTOP a worker mid-step: after its lease and 3 heartbeats another worker resumes
    the execution; SIGCONT: the frozen one's step ends too, but its late write is refused
    by the fence (the lease's epoch), so the step is recorded once, by the second."""
    started, go = tmp_path / "a-started", tmp_path / "go"
    execution_id = submit(
        run_ax, tmp_path,
        [step("a", f"ax:announce={started} ax:wait-file={go}"), step("b", deps=["a"])],
    )  # fmt: skip
    frozen = start_worker()
    wait_until(started.exists)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        started.unlink()
        second = start_worker()
        wait_until(started.exists)  # a runs again, on the second worker
        go.touch()
        waited = run_ax("workflow", "wait", execution_id, "--timeout", "20", "--format", "json")
        assert waited.returncode == 0, waited.stderr
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    wait_until(lambda: len([r for r in agent_runs(ledger) if r.end is not None]) == 3)
    time.sleep(1.0)  # the woken runner's commit of its step comes now, and is refused
    document = json.loads(waited.stdout)
    assert document["state"] == "completed"
    events = json.loads(run_ax("workflow", "events", execution_id, "--format", "json").stdout)
    completed_a = [e for e in events if e["type"] == "step_completed" and e["stepKey"] == "a"]
    assert [e["data"]["attempt"] for e in completed_a] == [2]  # the second worker's only
    ran_a_on = [
        line["ppid"]
        for line in read_ledger(ledger)
        if line["event"] == "start" and line["step"] == "a"
    ]
    assert ran_a_on[0] == frozen.pid and ran_a_on[-1] == second.pid
    assert frozen.poll() is None  # it lost the lease, not its life: still serving
    log = tmp_path / "worker-0.log"  # the frozen one's: one line, no traceback
    wait_until(lambda: "was taken over by another worker" in log.read_text(), 10)
    assert "Traceback" not in log.read_text()


def test_a_postgresql_restart_mid_run_is_survived(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ax_env: dict[str, str]
) -> None:
    """The database restarts while a step runs: the worker reconnects, records the step
    and the execution completes (a private cluster: the shared server is untouched)."""
    with private_cluster() as cluster:
        ax_env["AX_DB"] = cluster.url  # run_ax and start_worker read this mapping
        started, go = tmp_path / "a-started", tmp_path / "go"
        execution_id = submit(
            run_ax, tmp_path,
            [step("a", f"ax:announce={started} ax:wait-file={go}"), step("b", deps=["a"])],
        )  # fmt: skip
        worker = start_worker()
        wait_until(started.exists)
        cluster.stop()
        cluster.start()
        go.touch()
        waited = run_ax("workflow", "wait", execution_id, "--timeout", "30")
        assert waited.returncode == 0, (waited.stdout, waited.stderr)
        assert worker.poll() is None  # it rode out the restart
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0


def test_two_workers_share_the_steps_of_one_execution(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path, pg_url: str
) -> None:
    """Ready steps are jobs: four parallel steps of one execution, two workers of one slot
    each, and each worker ran some of them (the step's parent process is its worker)."""
    workers = [start_worker("--concurrency", "1"), start_worker("--concurrency", "1")]
    wait_until(lambda: registered_workers(pg_url) == 4)
    branches = [step(f"s{i}", "ax:sleep=0.5") for i in range(4)]
    execution_id = submit(
        run_ax, tmp_path, [*branches, step("join", deps=[b["key"] for b in branches])]
    )
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    runs = read_ledger(ledger)
    ran_on = {line["ppid"] for line in runs if line["event"] == "start" and line["step"] != "join"}
    assert ran_on == {w.pid for w in workers}


def test_each_worker_takes_only_its_providers_steps(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """`--queue`: a worker that has only the `python` provider's steps and one that has
    only the `command` provider's; a workflow with one of each: each ran where it may."""
    (tmp_path / "caps.py").write_text(
        "import os\n\ndef who(prompt, **_):\n    return {'pid': os.getpid()}\n"
    )
    python_only = start_worker("--queue", "python")
    command_only = start_worker("--queue", "command")
    steps = [step("py", agent="py"), step("cmd", deps=["py"])]
    folder = tmp_path / "caps"
    folder.mkdir()
    path = write_workflow(
        folder, workflow(steps, agents={"py": {"provider": "python", "callable": "caps:who"}})
    )
    submitted = run_ax("workflow", "submit", str(path), "--format", "json")
    assert submitted.returncode == 0, submitted.stderr
    execution_id = json.loads(submitted.stdout)["executionId"]
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30", "--format", "json")
    assert waited.returncode == 0, waited.stderr
    output = run_ax("workflow", "output", execution_id, "py")
    assert json.loads(output.stdout) == {"pid": python_only.pid}
    (cmd,) = [line for line in read_ledger(ledger) if line["event"] == "start"]
    assert cmd["ppid"] == command_only.pid
    unknown = run_ax("worker", "--queue", "gpu-farm")
    unknown.assert_clean_error(2)
    assert "unknown queue 'gpu-farm'" in unknown.stderr


def test_a_draining_worker_hands_its_attempt_on(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """The worker running a step's attempt gets SIGTERM: after its grace period the attempt
    is stopped, and another worker with that provider runs the step again, as its next
    attempt (the stopped one is closed as interrupted). Drained workers are not lost ones:
    three drains in a row (a rolling deploy) do not fail the step as `worker_lost`."""
    started, go = tmp_path / "started", tmp_path / "go"
    turns = start_worker("--queue", "python")  # takes turns; takes no `command` step
    execution_id = submit(
        run_ax, tmp_path, [step("work", f"ax:announce={started} ax:wait-file={go}")]
    )
    wait_until(lambda: status(run_ax, execution_id)["state"] == "executing")
    drained = []
    for _ in range(3):
        worker = start_worker("--queue", "command", "--grace", "0.3")
        wait_until(started.exists)
        started.unlink()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
        drained.append(worker.pid)
    last = start_worker("--queue", "command")
    wait_until(started.exists)  # handed on: the reaper gave the attempt a new job
    go.touch()
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr
    starts = [line for line in read_ledger(ledger) if line["event"] == "start"]
    assert [(line["ppid"], line["attempt"]) for line in starts] == [
        (pid, attempt) for attempt, pid in enumerate([*drained, last.pid], start=1)
    ]
    assert turns.poll() is None


def test_a_provider_limit_holds_across_all_workers(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path, ax_env: dict[str, str]
) -> None:
    """AX_PROVIDER_LIMITS=command=2: two workers with 3 slots each, six parallel steps of
    one provider: never more than 2 run at once (and 2 do), whichever worker runs them."""
    ax_env["AX_PROVIDER_LIMITS"] = "command=2"
    workers = [start_worker("--concurrency", "3"), start_worker("--concurrency", "3")]
    branches = [step(f"s{i}", "ax:sleep=0.3") for i in range(6)]
    data = workflow(branches, config={"parallelism": 6})
    folder = tmp_path / "limited"
    folder.mkdir()
    submitted = run_ax("workflow", "submit", str(write_workflow(folder, data)), "--format", "json")
    assert submitted.returncode == 0, submitted.stderr
    execution_id = json.loads(submitted.stdout)["executionId"]
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    runs = agent_runs(ledger)
    assert len(runs) == 6
    edges = sorted([(r.start, 1) for r in runs] + [(r.end or 0.0, -1) for r in runs])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    assert peak == 2
    assert {line["ppid"] for line in read_ledger(ledger)} <= {w.pid for w in workers}
    bad = run_ax("worker", env={"AX_PROVIDER_LIMITS": "command=lots"})
    bad.assert_clean_error(2)
    assert "AX_PROVIDER_LIMITS must be PROVIDER=N pairs" in bad.stderr


def test_the_python_api_resumes_a_submitted_execution_through_the_workers(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, pg_url: str
) -> None:
    """`Client.resume` of a paused submitted execution hands it back to the workers and
    returns once they have run it (it does not run it in the calling process)."""
    from automatosx.api import Client

    started, go = tmp_path / "started", tmp_path / "go"
    execution_id = submit(
        run_ax,
        tmp_path,
        [step("a", f"ax:announce={started} ax:wait-file={go}"), step("b", deps=["a"])],
    )
    worker = start_worker()
    wait_until(started.exists)
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    go.touch()  # a finishes; b does not start
    wait_until(lambda: status(run_ax, execution_id)["state"] == "paused")
    result = Client(pg_url).resume(execution_id)
    assert result.state == "completed"
    here = f"{os.uname().nodename}:{worker.pid}"
    assert owners(run_ax, execution_id) == [here, here]  # started, then resumed, by the worker


def test_a_waiting_gate_holds_no_worker(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """An execution whose only work left is an approval gate is let go (its drive slot is
    free: another execution runs meanwhile on a worker of one slot); approving gives it
    back to the workers, which finish it."""
    gated = submit(
        run_ax, tmp_path,
        [step("a"), {"key": "gate", "approval": {"message": "ship it?"}, "dependencies": ["a"]},
         step("b", deps=["gate"])],
        name="gated",
    )  # fmt: skip
    start_worker("--concurrency", "1")
    wait_until(lambda: status(run_ax, gated)["steps"]["gate"]["state"] == "waiting")
    other = submit(run_ax, tmp_path, [step("x")], name="other")
    waited = run_ax("workflow", "wait", other, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr  # the gate did not hold the only slot
    document = status(run_ax, gated)
    assert (document["state"], document["orphaned"]) == ("executing", False)
    approved = run_ax("workflow", "approve", gated, "gate")
    assert approved.returncode == 0, approved.stderr
    assert "resume" not in approved.stdout  # the workers apply it: nothing more to do
    waited = run_ax("workflow", "wait", gated, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr
    assert [r.step for r in agent_runs(ledger)] == ["a", "x", "b"]


def test_a_released_gate_is_decided_by_its_deadline(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """Let go while its gate waits, the execution is taken up again by the reaper once the
    deadline has passed, and `onTimeout` decides."""
    gate = {"message": "ship it?", "timeoutMs": 1000, "onTimeout": "approve"}
    execution_id = submit(
        run_ax, tmp_path, [{"key": "gate", "approval": gate}, step("b", deps=["gate"])]
    )
    start_worker()
    waited = run_ax("workflow", "wait", execution_id, "--timeout", "20", "--format", "json")
    assert waited.returncode == 0, waited.stderr
    events = json.loads(run_ax("workflow", "events", execution_id, "--format", "json").stdout)
    granted = [e for e in events if e["type"] == "approval_granted"]
    assert [e["data"]["by"] for e in granted] == ["timeout"]
    assert [r.step for r in agent_runs(ledger)] == ["b"]
    # no worker held it or took it up again: its deadline's turn decided the gate
    assert [e["type"] for e in events].count("workflow_resumed") == 0


def test_the_dashboard_and_stats_see_submitted_executions(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, pg_url: str, serve: Serve
) -> None:
    """The HTTP API shows a submitted execution as the CLI does, lists its waiting gate,
    approves it (the workers finish it), and the statistics count it."""
    import httpx

    execution_id = submit(
        run_ax, tmp_path,
        [{"key": "gate", "approval": {"message": "ship it?"}}, step("b", deps=["gate"])],
    )  # fmt: skip
    server = serve(pg_url)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        queued = client.get(f"/api/v1/executions/{execution_id}").json()
        assert queued == status(run_ax, execution_id) and queued["state"] == "queued"
        start_worker()
        wait_until(lambda: client.get("/api/v1/pending").json() != [])
        (gate,) = client.get("/api/v1/pending").json()
        assert (gate["executionId"], gate["stepKey"]) == (execution_id, "gate")
        origin = {"Origin": server.url.rstrip("/")}
        approved = client.post(
            f"/api/v1/executions/{execution_id}/steps/gate/approve", headers=origin
        )
        assert approved.status_code == 202, approved.text
        waited = run_ax("workflow", "wait", execution_id, "--timeout", "20")
        assert waited.returncode == 0, waited.stderr
        assert client.get(f"/api/v1/executions/{execution_id}").json()["state"] == "completed"
    stats = json.loads(run_ax("workflow", "stats", "--format", "json").stdout)
    (flow,) = stats["workflows"]
    assert (flow["executions"], flow["completed"]) == (1, 1)


def test_the_dashboard_filters_queued_executions(
    run_ax: RunAx, tmp_path: Path, pg_url: str, serve: Serve
) -> None:
    import httpx

    execution_id = submit(run_ax, tmp_path, [step("a")])  # no worker: it stays queued
    server = serve(pg_url)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        listed = client.get("/api/v1/executions", params={"state": "queued"})
        assert listed.status_code == 200, listed.text
        assert [e["executionId"] for e in listed.json()] == [execution_id]
        assert client.get("/api/v1/executions", params={"state": "executing"}).json() == []
        page = client.get("/", params={"state": "queued"})  # the executions page
        assert page.status_code == 200 and execution_id[:8] in page.text


def test_higher_priorities_are_claimed_first(
    run_ax: RunAx, tmp_path: Path, start_worker: Workers, ledger: Path
) -> None:
    """Submitted before any worker runs: a one-slot worker takes them by `--priority`,
    highest first (its steps' jobs carry it too), not in the order they were submitted."""
    for name, priority in (("low", "0"), ("high", "9"), ("middle", "5")):
        submit(run_ax, tmp_path, [step(name)], name, "--priority", priority)
    start_worker("--concurrency", "1")
    wait_until(lambda: len(agent_runs(ledger)) == 3 and all(r.end for r in agent_runs(ledger)))
    assert [r.step for r in agent_runs(ledger)] == ["high", "middle", "low"]
