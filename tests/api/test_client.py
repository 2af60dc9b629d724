"""`Client`: reading and steering executions from other processes, through the same
functions (and giving the same JSON) as the `ax workflow` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.support import (
    ax,
    ax_json,
    calls,
    env_for,
    finish_python,
    python_ok,
    start_python,
    wait_for_file,
    write_agents_module,
)

HELD_RUN = """
import json
import automatosx as ax
import test_agents

result = ax.run_workflow(
    {{"name": "held", "steps": [
        {{"key": "first", "agent": "counter", "prompt": "one"}},
        {{"key": "slow", "agent": "holder", "prompt": "two", "dependencies": ["first"]}},
        {{"key": "after", "agent": "counter", "prompt": "{{{{slow}}}}",
          "dependencies": ["slow"]}},
    ]}},
    agents={agents},
)
print(json.dumps(result.to_dict()))
"""
MODULE_AGENTS = '{"counter": test_agents.count, "holder": test_agents.held}'


def test_the_client_reads_a_running_execution_from_another_process(tmp_path: Path) -> None:
    write_agents_module(tmp_path)
    env = env_for(tmp_path / "ax.db")
    runner = start_python(HELD_RUN.format(agents=MODULE_AGENTS), cwd=tmp_path, env=env)
    execution_id = wait_for_file(tmp_path / "slow.started")
    live = python_ok(
        f"""
        import json
        import automatosx as ax
        client = ax.Client()
        status = client.status({execution_id[:8]!r})
        runs = client.executions()
        print(json.dumps({{
            "state": status.state, "id": status.execution_id,
            "steps": {{key: step.state for key, step in status.steps.items()}},
            "results": status.step_results,
            "runs": [[run.execution_id, run.state] for run in runs],
            "document": status.to_dict(),
        }}))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert live["id"] == execution_id
    assert live["state"] == "executing"
    assert live["steps"] == {"first": "completed", "slow": "running", "after": "pending"}
    assert live["results"] == {"first": {"step": "first", "prompt": "one", "attempt": 1}}
    assert live["runs"] == [[execution_id, "executing"]]
    (tmp_path / "slow.release").touch()
    final = finish_python(runner)
    assert final["state"] == "completed"
    assert final["stepResults"]["after"]["prompt"] == "held two"
    assert live["document"]["executionId"] == final["executionId"]


def test_pause_from_the_cli_and_resume_from_the_api(tmp_path: Path) -> None:
    write_agents_module(tmp_path)
    env = env_for(tmp_path / "ax.db")
    runner = start_python(HELD_RUN.format(agents=MODULE_AGENTS), cwd=tmp_path, env=env)
    execution_id = wait_for_file(tmp_path / "slow.started")
    assert ax("workflow", "pause", execution_id, cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "slow.release").touch()
    paused = finish_python(runner)
    assert paused["state"] == "paused"
    assert paused["steps"]["after"]["state"] == "pending"
    resumed = python_ok(
        f"""
        import json
        import automatosx as ax
        print(json.dumps(ax.Client().resume({execution_id!r}).to_dict()))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert resumed["state"] == "completed"
    assert resumed["resumeCount"] == 1
    assert resumed["stepResults"]["after"]["prompt"] == "held two"
    assert calls(tmp_path) == ["first", "after"]  # nothing completed ran again
    assert ax_json("workflow", "status", execution_id, cwd=tmp_path, env=env) == resumed


def test_callables_given_in_code_are_given_again_to_resume(tmp_path: Path) -> None:
    """A lambda lives only in the process that was given it: a CLI resume says so (exit 2)
    and the API's resume takes the callables again."""
    write_agents_module(tmp_path)
    env = env_for(tmp_path / "ax.db")
    in_memory = '{"counter": lambda prompt, **_: "memo " + prompt, "holder": test_agents.held}'
    runner = start_python(HELD_RUN.format(agents=in_memory), cwd=tmp_path, env=env)
    execution_id = wait_for_file(tmp_path / "slow.started")
    assert ax("workflow", "pause", execution_id, cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "slow.release").touch()
    assert finish_python(runner)["state"] == "paused"

    refused = ax("workflow", "resume", execution_id, cwd=tmp_path, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "given in code" in refused.stderr and "Traceback" not in refused.stderr

    resumed = python_ok(
        f"""
        import json
        import automatosx as ax
        import test_agents
        result = ax.Client().resume(
            {execution_id!r}, agents={{"counter": lambda prompt, **_: "again " + prompt}}
        )
        print(json.dumps(result.to_dict()))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert resumed["state"] == "completed"
    assert resumed["stepResults"] == {
        "first": "memo one",
        "slow": "held two",
        "after": "again held two",
    }


APPROVAL_RUN = """
import json
import automatosx as ax

result = ax.run_workflow(
    {"name": "gated", "config": {"continueOnError": True}, "steps": [
        {"key": "draft", "agent": "writer", "prompt": "text"},
        {"key": "ship", "approval": {"message": "Ship {{draft}}?"}, "dependencies": ["draft"]},
        {"key": "veto", "approval": {"message": "Veto?"}},
        {"key": "done", "agent": "writer", "prompt": "{{ship}}", "dependencies": ["ship"]},
    ]},
    agents={"writer": lambda prompt, **_: "wrote " + prompt},
)
print(json.dumps(result.to_dict()))
"""


def test_approve_and_reject_through_the_client(tmp_path: Path) -> None:
    env = env_for(tmp_path / "ax.db")
    runner = start_python(APPROVAL_RUN, cwd=tmp_path, env=env)
    waiting = python_ok(
        """
        import json, time
        import automatosx as ax
        while len(ax.Client().pending()) < 2:
            time.sleep(0.02)
        print(json.dumps([p.to_dict() for p in ax.Client().pending()]))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert waiting == ax_json("workflow", "pending", cwd=tmp_path, env=env)
    decided = python_ok(
        """
        import json, time
        import automatosx as ax
        client = ax.Client()
        while len(client.pending()) < 2:
            time.sleep(0.02)
        pending = client.pending()
        (run,) = client.executions()
        approved = client.approve(run.execution_id, "ship", comment="looks good", by="alice")
        rejected = client.reject(run.execution_id, "veto", "no")
        try:
            client.approve(run.execution_id, "ship")
        except ax.StateConflictError as exc:
            again = str(exc)
        print(json.dumps({
            "pending": sorted((p.step_key, p.message, p.workflow_name) for p in pending),
            "approved": approved.execution_id == run.execution_id,
            "again": again,
        }))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert decided["pending"] == [
        ["ship", "Ship wrote text?", "gated"],
        ["veto", "Veto?", "gated"],
    ]
    assert decided["approved"]
    assert "already approved by alice" in decided["again"]
    final = finish_python(runner)
    assert final["state"] == "failed"  # the veto was rejected
    assert final["steps"]["veto"]["errorKind"] == "rejected"
    assert final["steps"]["veto"]["error"] == "rejected: rejected by tester: no"  # AX_USER
    ship = final["stepResults"]["ship"]
    assert (ship["approved"], ship["by"], ship["comment"]) == (True, "alice", "looks good")
    assert final["steps"]["done"]["state"] == "completed"


def test_cancel_through_the_client(tmp_path: Path) -> None:
    write_agents_module(tmp_path)
    env = env_for(tmp_path / "ax.db")
    runner = start_python(HELD_RUN.format(agents=MODULE_AGENTS), cwd=tmp_path, env=env)
    execution_id = wait_for_file(tmp_path / "slow.started")
    cancelled = python_ok(
        f"""
        import json
        import automatosx as ax
        print(json.dumps(ax.Client().cancel({execution_id!r}).to_dict()))
        """,
        cwd=tmp_path,
        env=env,
    )
    (tmp_path / "slow.release").touch()  # a sync callable's thread runs on (Python cannot kill it)
    final = finish_python(runner)
    assert final["state"] == "cancelled"
    assert cancelled["state"] == "cancelled"
    assert cancelled["steps"]["after"]["state"] == "cancelled"


def test_client_methods_return_what_the_cli_prints_as_json(tmp_path: Path) -> None:
    env = env_for(tmp_path / "ax.db")
    got = python_ok(
        """
        import json
        import automatosx as ax
        flow = ax.Workflow.from_dict({"name": "listed", "description": "for the list",
            "config": {"checkpointInterval": 1},
            "steps": [{"key": "a", "agent": "x", "prompt": "p"},
                      {"key": "b", "agent": "x", "prompt": "{{a}}", "dependencies": ["a"]}]})
        agents = {"x": lambda prompt, **_: {"said": prompt}}
        first = ax.run_workflow(flow, agents=agents)
        second = ax.run_workflow(flow, agents=agents)
        client = ax.Client()
        print(json.dumps({
            "id": first.execution_id,
            "runs": [r.to_dict() for r in client.executions(limit=5)],
            "runsOfListed": [r.to_dict() for r in client.executions(workflow="listed")],
            "status": client.status(first.execution_id).to_dict(),
            "events": [e.to_dict() for e in client.events(first.execution_id)],
            "eventTypes": [e.type for e in client.events(first.execution_id)],
            "checkpoints": [c.to_dict() for c in client.checkpoints(first.execution_id)],
            "list": [w.to_dict() for w in client.workflows()],
            "totals": [w.total_executions for w in client.workflows()],
            "output": client.output(first.execution_id, "b"),
        }))
        """,
        cwd=tmp_path,
        env=env,
    )
    run_id = got["id"]
    assert got["runs"] == ax_json("workflow", "runs", "--limit", "5", cwd=tmp_path, env=env)
    assert got["runsOfListed"] == got["runs"]
    assert got["status"] == ax_json("workflow", "status", run_id, cwd=tmp_path, env=env)
    assert got["events"] == ax_json("workflow", "events", run_id, cwd=tmp_path, env=env)
    assert got["eventTypes"][0] == "workflow_started"
    assert got["eventTypes"][-1] == "workflow_completed"
    assert got["checkpoints"] == ax_json(
        "workflow", "checkpoints", run_id, "--limit", "1000", cwd=tmp_path, env=env
    )
    assert got["list"] == ax_json("workflow", "list", cwd=tmp_path, env=env)
    assert got["totals"] == [2]
    output = ax("workflow", "output", run_id, "b", "--format", "json", cwd=tmp_path, env=env)
    assert got["output"] == json.loads(output.stdout) == {"said": '{"said":"p"}'}


def test_unknown_ids_and_forbidden_states_are_the_clis_errors(tmp_path: Path) -> None:
    env = env_for(tmp_path / "ax.db")
    got = python_ok(
        """
        import json
        import automatosx as ax
        client = ax.Client()
        answers = {}
        try:
            client.status("deadbeef")
        except ax.NotFoundError as exc:
            answers["unknown"] = str(exc)
        done = ax.run_workflow({"name": "n", "steps": [{"key": "a", "agent": "x", "prompt": "p"}]},
                               agents={"x": lambda p, **_: p})
        for name in ("pause", "resume", "cancel"):
            try:
                getattr(client, name)(done.execution_id)
            except ax.StateConflictError as exc:
                answers[name] = str(exc)
        print(json.dumps(answers))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert "deadbeef" in got["unknown"]
    assert "cannot pause" in got["pause"]
    assert "nothing to resume" in got["resume"]
    assert "already completed" in got["cancel"]


def test_a_reader_creates_no_database(tmp_path: Path) -> None:
    env = env_for(tmp_path / "missing.db")
    got = python_ok(
        """
        import json
        import automatosx as ax
        print(json.dumps([r.to_dict() for r in ax.Client().executions()]))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert got == []
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.postgres
def test_the_client_over_postgres_from_another_process(tmp_path: Path, pg_url: str) -> None:
    write_agents_module(tmp_path)
    env = env_for(pg_url)
    runner = start_python(HELD_RUN.format(agents=MODULE_AGENTS), cwd=tmp_path, env=env)
    execution_id = wait_for_file(tmp_path / "slow.started")
    live = python_ok(
        f"""
        import json
        import automatosx as ax
        status = ax.Client({pg_url!r}).status({execution_id!r})
        print(json.dumps({{"state": status.state,
                          "slow": status.steps["slow"].state}}))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "elsewhere.db"),  # the Client's db, not AX_DB, is used
    )
    assert live == {"state": "executing", "slow": "running"}
    (tmp_path / "slow.release").touch()
    final = finish_python(runner)
    assert final["state"] == "completed"
    assert ax_json("workflow", "status", execution_id, cwd=tmp_path, env=env) == final
    assert not (tmp_path / "elsewhere.db").exists()
