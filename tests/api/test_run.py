"""Running workflows from Python (SPEC section 12), each in a fresh interpreter: from a dict
and from a file, with callables and with registry agents; the result is the status
document the CLI prints, typed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.support import (
    ax,
    ax_json,
    calls,
    env_for,
    python,
    python_ok,
    write_agents_module,
)


def test_a_dict_run_with_sync_and_async_callables_gives_the_status_document(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path / "ax.db")
    out = python_ok(
        """
        import asyncio, json
        import automatosx as ax

        seen = {}

        def shout(prompt, *, execution_id, step_key, attempt, context):
            seen[step_key] = [execution_id, attempt, context]
            return {"loud": prompt.upper()}

        async def echo(prompt, **kwargs):
            await asyncio.sleep(0)
            keys = ("execution_id", "attempt", "context")
            seen[kwargs["step_key"]] = [kwargs[key] for key in keys]
            return "echo " + prompt

        wf = ax.Workflow.from_dict({
            "name": "from-dict",
            "steps": [
                {"key": "shout", "agent": "shouter", "prompt": "hi {{who}}"},
                {"key": "echo", "agent": "echo-er", "prompt": "{{shout}}",
                 "dependencies": ["shout"]},
            ],
        })
        result = ax.run_workflow(wf, {"who": "ann"}, agents={"shouter": shout, "echo-er": echo},
                                 db="ax.db")
        assert isinstance(result, ax.ExecutionResult)
        print(json.dumps({
            "document": result.to_dict(),
            "id": result.execution_id,
            "state": result.state,
            "results": result.step_results,
            "provider": result.steps["echo"].provider,
            "agent": result.steps["shout"].agent,
            "attempts": result.steps["shout"].attempts,
            "triggered": result.triggered_by,
            "seen": seen,
        }))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert out["state"] == "completed"
    assert out["results"] == {
        "shout": {"loud": "HI ANN"},
        "echo": 'echo {"loud":"HI ANN"}',
    }
    assert (out["provider"], out["agent"], out["attempts"]) == ("python", "shouter", 1)
    assert out["triggered"] == "api"
    # Called as the python provider's contract says, sync and async alike.
    assert out["seen"] == {
        "shout": [out["id"], 1, {"who": "ann"}],
        "echo": [out["id"], 1, {"who": "ann"}],
    }
    # The same document `ax workflow status --format json` prints, from another process.
    assert ax_json("workflow", "status", out["id"], cwd=tmp_path, env=env) == out["document"]


def test_a_file_run_with_registry_agents_uses_ax_db_by_default(tmp_path: Path) -> None:
    write_agents_module(tmp_path)
    agents = tmp_path / ".automatosx" / "agents"
    agents.mkdir(parents=True)
    (agents / "counter.yaml").write_text("provider: python\ncallable: test_agents:count\n")
    (tmp_path / "flow.yaml").write_text(
        "name: from-file\n"
        "agents:\n"
        "  shell:\n"
        "    provider: command\n"
        "    command: [sh, -c, 'tr a-z A-Z']\n"
        "steps:\n"
        "  - key: first\n"
        "    agent: counter\n"
        "    prompt: 'about {{topic}}'\n"
        "  - key: second\n"
        "    agent: shell\n"
        "    prompt: 'saw {{first}}'\n"
        "    dependencies: [first]\n"
    )
    env = env_for(tmp_path / "default.db")
    out = python_ok(
        """
        import json
        import automatosx as ax

        wf = ax.load_workflow("flow.yaml")
        assert (wf.name, wf.step_keys, wf.source) == ("from-file", ["first", "second"], "flow.yaml")
        result = ax.run_workflow(wf, context={"topic": "owls"})
        client = ax.Client()
        print(json.dumps({"result": result.to_dict(), "db": client.db,
                          "status": client.status(result.execution_id).to_dict()}))
        """,
        cwd=tmp_path,
        env=env,
    )
    result = out["result"]
    assert result["state"] == "completed"
    assert result["stepResults"]["first"] == {
        "step": "first",
        "prompt": "about owls",
        "attempt": 1,
    }
    assert result["stepResults"]["second"].startswith('SAW {"STEP":"FIRST"')
    assert result["steps"]["second"]["provider"] == "command"
    assert calls(tmp_path) == ["first"]
    assert out["db"] == str(tmp_path / "default.db")  # AX_DB, as the CLI reads it
    assert out["status"] == result
    runs = ax_json("workflow", "runs", cwd=tmp_path, env=env)
    assert [r["executionId"] for r in runs] == [result["executionId"]]


def test_an_exception_fails_its_step_with_provider_error_or_the_step_errors_kind(
    tmp_path: Path,
) -> None:
    out = python_ok(
        """
        import json
        import automatosx as ax

        def broken(prompt, **_):
            raise ValueError("no can do")

        async def limited(prompt, **_):
            raise ax.StepError("rate_limit", "slow down")

        def fine(prompt, **_):
            return "ok"

        result = ax.run_workflow(
            {"name": "failing", "config": {"continueOnError": True}, "steps": [
                {"key": "broken", "agent": "backend", "prompt": "x"},
                {"key": "limited", "agent": "limited", "prompt": "x"},
                {"key": "fine", "agent": "fine", "prompt": "x"},
                {"key": "after", "agent": "fine", "prompt": "x", "dependencies": ["broken"]},
            ]},
            agents={"backend": broken, "limited": limited, "fine": fine},
            db="ax.db",
        )
        steps = result.steps
        print(json.dumps({
            "state": result.state,
            "kinds": {key: steps[key].error_kind for key in steps},
            "states": {key: steps[key].state for key in steps},
            "errors": {key: steps[key].error for key in steps},
        }))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    assert out["state"] == "failed"
    assert out["kinds"] == {
        "broken": "provider_error",
        "limited": "rate_limit",
        "fine": None,
        "after": None,
    }
    assert out["states"] == {
        "broken": "failed",
        "limited": "failed",
        "fine": "completed",
        "after": "skipped",
    }
    assert out["errors"]["broken"] == "provider_error: ValueError: no can do"
    assert out["errors"]["limited"] == "rate_limit: slow down"


def test_the_sync_run_inside_a_running_loop_is_refused_and_the_async_one_runs(
    tmp_path: Path,
) -> None:
    out = python_ok(
        """
        import asyncio, json
        import automatosx as ax

        async def agent(prompt, **_):
            return prompt[::-1]

        flow = {"name": "in-loop", "steps": [{"key": "only", "agent": "rev", "prompt": "abc"}]}

        async def main():
            try:
                ax.run_workflow(flow, agents={"rev": agent}, db="ax.db")
            except ax.RunningLoopError as exc:
                refused = str(exc)
            else:
                refused = None
            try:
                ax.Client("ax.db").resume("00000000")
            except RuntimeError as exc:
                resume_refused = str(exc)
            try:
                ax.Client("ax.db").run(flow, agents={"rev": agent})
            except ax.RunningLoopError as exc:
                resume_refused += " | " + str(exc)
            result = await ax.run_workflow_async(flow, agents={"rev": agent}, db="ax.db")
            return refused, resume_refused, result

        refused, resume_refused, result = asyncio.run(main())
        print(json.dumps({"refused": refused, "resume": resume_refused,
                          "state": result.state, "results": result.step_results,
                          "runs": len(ax.Client("ax.db").executions())}))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    assert "running event loop" in out["refused"]
    assert "await automatosx.run_workflow_async(" in out["refused"]
    assert "Client.resume_async" in out["resume"]
    assert "Client.run_async" in out["resume"]
    assert out["runs"] == 1  # the refused call started nothing
    assert (out["state"], out["results"]) == ("completed", {"only": "cba"})


def test_cancelling_the_awaiting_task_cancels_the_execution(tmp_path: Path) -> None:
    out = python_ok(
        """
        import asyncio, json, os
        import automatosx as ax

        async def forever(prompt, **_):
            open("started", "w").close()
            await asyncio.Event().wait()

        async def main():
            flow = {"name": "cancelled", "steps": [{"key": "wait", "agent": "w", "prompt": "x"}]}
            task = asyncio.create_task(ax.run_workflow_async(flow, agents={"w": forever},
                                                             db="ax.db"))
            while not os.path.exists("started"):
                await asyncio.sleep(0.01)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return "propagated"
            return "swallowed"

        how = asyncio.run(main())
        (run,) = ax.Client("ax.db").executions()
        status = ax.Client("ax.db").status(run.execution_id)
        print(json.dumps({"how": how, "state": status.state,
                          "step": status.steps["wait"].state}))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    assert out == {"how": "propagated", "state": "cancelled", "step": "cancelled"}


def test_a_callable_is_stored_by_its_importable_name_and_a_lambda_as_in_memory(
    tmp_path: Path,
) -> None:
    write_agents_module(tmp_path)
    env = env_for(tmp_path / "ax.db")
    python_ok(
        """
        import json
        import automatosx as ax
        import test_agents

        result = ax.run_workflow(
            {"name": "stored", "steps": [
                {"key": "a", "agent": "counter", "prompt": "x"},
                {"key": "b", "agent": "anon", "prompt": "y"},
            ]},
            agents={"counter": test_agents.count, "anon": lambda prompt, **_: prompt},
            db="ax.db",
        )
        print(json.dumps(result.state))
        """,
        cwd=tmp_path,
        env=env,
    )
    shown = ax("workflow", "show", "stored", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "callable: test_agents:count" in shown.stdout
    assert "callable: __ax_in_memory__:anon" in shown.stdout


def test_a_workflow_run_by_path_or_dict_needs_no_workflow_object(tmp_path: Path) -> None:
    (tmp_path / "flow.json").write_text(
        json.dumps({"name": "by-path", "steps": [{"key": "s", "agent": "a", "prompt": "p"}]})
    )
    proc = python(
        """
        import json
        import automatosx as ax
        result = ax.run_workflow("flow.json", agents={"a": lambda p, **_: p + "!"}, db="ax.db")
        print(json.dumps(result.step_results))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"s": "p!"}


def test_a_client_on_the_same_loop_cancels_a_run_awaited_there(tmp_path: Path) -> None:
    out = python_ok(
        """
        import asyncio, json, os
        import automatosx as ax

        ids = []

        async def forever(prompt, *, execution_id, **_):
            ids.append(execution_id)
            await asyncio.Event().wait()

        async def main():
            flow = {"name": "same-loop", "steps": [{"key": "w", "agent": "w", "prompt": "x"}]}
            task = asyncio.create_task(ax.run_workflow_async(flow, agents={"w": forever},
                                                             db="ax.db"))
            while not ids:
                await asyncio.sleep(0.01)
            ax.Client("ax.db").cancel(ids[0])  # the runner is on this loop: no waiting here
            return await task

        result = asyncio.run(main())
        print(json.dumps({"state": result.state, "step": result.steps["w"].state}))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    assert out == {"state": "cancelled", "step": "cancelled"}
