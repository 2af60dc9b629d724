"""The JSON API through a real `ax ui` on loopback, over real executions in SQLite and in
PostgreSQL: each body is exactly what the CLI prints with `--format json`, lists page by
cursor, errors are the CLI's as 4xx, and the commands steer executions as the CLI's do."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from automatosx.views.timestamps import MAX_AGE_SECONDS
from tests.conftest import RunAx
from tests.runtime.support import start_ax, step, wait_until, workflow, write_workflow
from tests.web.conftest import Serve
from tests.web.support import cli_json, diamond, gate, held_run, run_json


@pytest.fixture
def env(ax_env: dict[str, str], store_url: str) -> dict[str, str]:
    return {**ax_env, "AX_DB": store_url}


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30)


def test_bodies_are_the_cli_documents(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    document = run_json(run_ax, tmp_path, diamond(), env)
    execution_id = document["executionId"]
    server = serve(env["AX_DB"])
    with api(server.url) as client:
        status = client.get(f"/api/v1/executions/{execution_id[:8]}")  # a prefix is enough
        assert status.status_code == 200
        assert status.json() == cli_json(run_ax, env, "workflow", "status", execution_id)
        assert status.json()["steps"]["right"]["attempts"] == 2
        for path, args in [
            ("/api/v1/executions", ["workflow", "runs"]),
            ("/api/v1/workflows", ["workflow", "list"]),
            (f"/api/v1/executions/{execution_id}/events", ["workflow", "events", execution_id]),
            (
                f"/api/v1/executions/{execution_id}/checkpoints",
                ["workflow", "checkpoints", execution_id],
            ),
            ("/api/v1/pending", ["workflow", "pending"]),
        ]:
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/json"
            assert response.json() == cli_json(run_ax, env, *args), path
        output = client.get(f"/api/v1/executions/{execution_id}/steps/plan/output")
        assert output.json() == {"items": [1, 2]}


def test_the_graph_has_every_step_its_state_level_and_edges(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    data = diamond()
    data["steps"].append(step("maybe", "x", ["plan"], **{"if": "false"}))
    data["steps"].append(step("never", "ax:fail-always", ["join"]))
    data["steps"].append(step("after", "x", ["never"]))
    document = run_json(run_ax, tmp_path, data, env)
    server = serve(env["AX_DB"])
    with api(server.url) as client:
        graph = client.get(f"/api/v1/executions/{document['executionId']}/graph").json()
    nodes = {node["key"]: (node["state"], node["level"]) for node in graph["nodes"]}
    assert nodes == {
        "plan": ("completed", 0),
        "left": ("completed", 1),
        "right": ("completed", 1),
        "join": ("completed", 2),
        "maybe": ("skipped", 1),
        "never": ("failed", 3),
        "after": ("cancelled", 4),  # the run failed with `never`: nothing else starts
    }
    assert graph["edges"] == [
        ["plan", "left"], ["plan", "right"], ["left", "join"], ["right", "join"],
        ["plan", "maybe"], ["join", "never"], ["never", "after"],
    ]  # fmt: skip
    assert [n["skipReason"] for n in graph["nodes"] if n["key"] == "maybe"] == ["condition_false"]
    assert graph["criticalPath"][0] == "plan" and graph["criticalPath"][-1] == "never"


def test_executions_and_events_page_by_cursor(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    for _ in range(5):
        run_json(run_ax, tmp_path, workflow([step("a", "x")]), env)
    runs = cli_json(run_ax, env, "workflow", "runs", "--limit", "10")
    server = serve(env["AX_DB"])
    seen: list[dict[str, Any]] = []
    pages = 0
    with api(server.url) as client:
        url: str | None = "/api/v1/executions?limit=2"
        while url is not None:
            response = client.get(url)
            seen += response.json()
            pages += 1
            url = response.links.get("next", {}).get("url")
        assert pages == 3 and [r["executionId"] for r in seen] == [r["executionId"] for r in runs]
        events = client.get(f"/api/v1/executions/{runs[0]['executionId']}/events").json()
        first = client.get(f"/api/v1/executions/{runs[0]['executionId']}/events?limit=2")
        assert first.json() == events[:2]
        rest = client.get(first.links["next"]["url"]).json()
        assert rest[0] == events[2]
        kinds = client.get(
            f"/api/v1/executions/{runs[0]['executionId']}/events?type=step_started"
            "&type=workflow_completed"
        ).json()
        assert [e["type"] for e in kinds] == ["step_started", "workflow_completed"]
        completed = client.get("/api/v1/executions", params={"state": "failed"}).json()
        assert completed == []


def test_errors_are_the_clis_as_4xx(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    document = run_json(run_ax, tmp_path, workflow([step("a", "x")]), env)
    execution_id = document["executionId"]
    server = serve(env["AX_DB"])
    origin = {"Origin": server.url.rstrip("/")}
    with api(server.url) as client:
        for path in ["/api/v1/executions/ffffffff", "/api/v1/executions/ffffffff/events",
                     "/api/v1/executions/ffffffff/graph", "/api/v1/executions/ffffffff/stream",
                     f"/api/v1/executions/{execution_id}/steps/nope/output",
                     "/api/v1/executions?workflow=nope"]:  # fmt: skip
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"], path
        assert (
            "did you mean 'a'"
            in client.get(f"/api/v1/executions/{execution_id}/steps/aa/output").json()["error"]
        )
        for path in ["/api/v1/executions?state=bogus", "/api/v1/executions?limit=0",
                     "/api/v1/executions/x/events?after=-1", "/api/v1/executions/abc"]:  # fmt: skip
            response = client.get(path)
            assert response.status_code in (400, 404), path
            assert set(response.json()) == {"error"}, path
        assert client.get("/api/v1/executions?state=bogus").status_code == 400
        done = client.post(f"/api/v1/executions/{execution_id}/pause", headers=origin)
        assert done.status_code == 409 and "completed" in done.json()["error"]
        assert (
            client.post(f"/api/v1/executions/{execution_id}/resume", headers=origin).status_code
            == 409
        )
        gone = client.post("/api/v1/executions/ffffffff/cancel", headers=origin)
        assert gone.status_code == 404
        not_gate = client.post(f"/api/v1/executions/{execution_id}/steps/a/approve", headers=origin)
        assert not_gate.status_code == 409 and "not an approval" in not_gate.json()["error"]
        bad_body = client.post(
            f"/api/v1/executions/{execution_id}/steps/a/approve",
            headers=origin, json={"comment": 3, "extra": True},
        )  # fmt: skip
        assert bad_body.status_code == 400
    assert cli_json(run_ax, env, "workflow", "status", execution_id)["state"] == "completed"


def test_pause_resume_and_cancel_steer_a_running_execution(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    runner, hold = held_run(tmp_path, env)
    server = serve(env["AX_DB"])
    origin = {"Origin": server.url.rstrip("/")}
    with api(server.url) as client:
        (run,) = client.get("/api/v1/executions").json()
        execution_id = run["executionId"]
        paused = client.post(f"/api/v1/executions/{execution_id[:8]}/pause", headers=origin)
        assert paused.status_code == 202
        assert paused.json() == {"executionId": execution_id, "state": "executing"}
        hold.touch()  # the running step finishes; nothing new starts
        assert runner.wait(30) == 4
        assert client.get(f"/api/v1/executions/{execution_id}").json()["state"] == "paused"
        again = client.post(f"/api/v1/executions/{execution_id}/pause", headers=origin)
        assert again.status_code == 409
        resumed = client.post(f"/api/v1/executions/{execution_id}/resume", headers=origin)
        assert resumed.status_code == 202 and resumed.json()["executionId"] == execution_id
        wait_until(
            lambda: client.get(f"/api/v1/executions/{execution_id}").json()["state"] == "completed"
        )  # the server ran the rest
        steps = client.get(f"/api/v1/executions/{execution_id}").json()["steps"]
        assert steps["next"]["state"] == "completed" and steps["slow"]["attempts"] == 1

    runner, hold = held_run(tmp_path, env)
    with api(server.url) as client:
        latest = client.get("/api/v1/executions?limit=1").json()[0]["executionId"]
        cancelled = client.post(f"/api/v1/executions/{latest}/cancel", headers=origin)
        assert cancelled.status_code == 202
        assert runner.wait(30) == 3
        assert client.get(f"/api/v1/executions/{latest}").json()["state"] == "cancelled"


def test_approve_and_reject_decide_gates(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    data = workflow([gate("review"), step("ship", "x", ["review"])])
    path = write_workflow(tmp_path, data)
    runner = start_ax(["workflow", "run", str(path)], env=env, cwd=tmp_path)
    server = serve(env["AX_DB"])
    origin = {"Origin": server.url.rstrip("/")}
    with api(server.url) as client:
        wait_until(lambda: bool(client.get("/api/v1/pending").json()))
        (waiting,) = client.get("/api/v1/pending").json()
        assert waiting["stepKey"] == "review" and waiting["message"] == "Ship it?"
        execution_id = waiting["executionId"]
        decided = client.post(
            f"/api/v1/executions/{execution_id}/steps/review/approve",
            headers=origin, json={"comment": "looks good", "by": "ana"},
        )  # fmt: skip
        assert decided.status_code == 202
        assert decided.json() == {"executionId": execution_id, "state": "executing"}
        assert runner.wait(30) == 0
        second = client.post(
            f"/api/v1/executions/{execution_id}/steps/review/reject", headers=origin
        )
        assert second.status_code == 409
        events = client.get(f"/api/v1/executions/{execution_id}/events?type=approval_granted")
        (granted,) = events.json()
        assert granted["data"]["by"] == "ana" and granted["data"]["comment"] == "looks good"

        runner = start_ax(["workflow", "run", str(path)], env=env, cwd=tmp_path)
        wait_until(lambda: bool(client.get("/api/v1/pending").json()))
        (waiting,) = client.get("/api/v1/pending").json()
        rejected = client.post(
            f"/api/v1/executions/{waiting['executionId']}/steps/review/reject", headers=origin
        )
        assert rejected.status_code == 202
        assert runner.wait(30) == 1
        document = client.get(f"/api/v1/executions/{waiting['executionId']}").json()
        assert document["steps"]["review"]["errorKind"] == "rejected"
        assert document["steps"]["ship"]["state"] == "cancelled"


def test_openapi_documents_every_route_and_its_errors(tmp_path: Path, serve: Serve) -> None:
    server = serve(str(tmp_path / "ax.db"))
    with api(server.url) as client:
        spec = client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/api/v1/workflows", "/api/v1/executions", "/api/v1/executions/{id}",
        "/api/v1/executions/{id}/events", "/api/v1/executions/{id}/checkpoints",
        "/api/v1/executions/{id}/graph", "/api/v1/executions/{id}/stream", "/api/v1/pending",
        "/api/v1/executions/{id}/pause", "/api/v1/executions/{id}/resume",
        "/api/v1/executions/{id}/cancel", "/api/v1/executions/{id}/steps/{key}/approve",
        "/api/v1/executions/{id}/steps/{key}/reject",
    }  # fmt: skip
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401"} <= codes, (method, path)
            if "{id}" in path:
                assert "404" in codes, (method, path)
            if method == "post":
                assert {"202", "403", "409"} <= codes, (method, path)
            assert "422" not in codes, (method, path)  # bad input is 400, as documented


def test_the_body_of_a_big_list_is_json_even_at_the_page_limit(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    """limit=1000 is accepted, 1001 is not (a bound, not a surprise)."""
    server = serve(env["AX_DB"])
    with api(server.url) as client:
        assert client.get("/api/v1/executions?limit=1000").json() == []
        assert client.get("/api/v1/executions?limit=1001").status_code == 400
    assert json.loads("[]") == []


def test_stats_are_the_clis(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    run_json(run_ax, tmp_path, diamond(), env)
    server = serve(env["AX_DB"])
    with api(server.url) as client:
        served = client.get("/api/v1/stats", params={"since": "1d", "workflow": "diamond"})
        assert served.status_code == 200
        printed = cli_json(
            run_ax, env, "workflow", "stats", "--since", "1d", "--workflow", "diamond"
        )
        assert {k: v for k, v in served.json().items() if k != "since"} == {
            k: v for k, v in printed.items() if k != "since"
        }  # `since` is "now - 1d", a moment apart
        (right,) = [s for s in served.json()["steps"] if s["stepKey"] == "right"]
        assert right["retried"] == 1 and right["retrySuccessRate"] == 1.0
        assert client.get("/api/v1/stats?since=soon").status_code == 400
        assert client.get("/api/v1/stats?workflow=nope").status_code == 404
        # found by fuzzing: an age before year 1 was a 500; more than 100 years is "all"
        everything = client.get("/api/v1/stats?since=9999999w").json()
        assert everything["workflows"] == served.json()["workflows"]
    before = time.time()
    cli = cli_json(run_ax, env, "workflow", "stats", "--since", "9999999w")
    since = datetime.fromisoformat(cli["since"].replace("Z", "+00:00")).timestamp()
    assert abs(before - MAX_AGE_SECONDS - since) < 60  # "all": the cap, 100 years back


def test_attempts_show_each_rendered_prompt_and_output(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    document = run_json(run_ax, tmp_path, diamond(), env)
    server = serve(env["AX_DB"])
    base = f"/api/v1/executions/{document['executionId']}/steps"
    with api(server.url) as client:
        right = client.get(f"{base}/right/attempts").json()
        assert [(a["attempt"], a["state"]) for a in right] == [(1, "failed"), (2, "completed")]
        assert [a["prompt"] for a in right] == ["ax:fail-attempts=1", "ax:fail-attempts=1"]
        left = client.get(f"{base}/left/attempts").json()
        assert left[0]["prompt"] == 'left of {"items":[1,2]}'  # rendered, not the template
        assert client.get(f"{base}/nope/attempts").status_code == 404


def test_a_retried_step_weighs_its_whole_span_on_the_critical_path(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    """Its failed attempt and backoff held `join` up as much as its last attempt did."""
    data = workflow(
        [
            step("plan", "x"),
            step("fast", "ax:sleep=0.1", ["plan"]),  # longer than flaky's last attempt
            step("flaky", "ax:fail-attempts=1", ["plan"],
                 retryPolicy={"maxRetries": 1, "retryDelayMs": 400}),
            step("join", "x", ["fast", "flaky"]),
        ]
    )  # fmt: skip
    document = run_json(run_ax, tmp_path, data, env)
    server = serve(env["AX_DB"])
    with api(server.url) as client:
        graph = client.get(f"/api/v1/executions/{document['executionId']}/graph").json()
    assert graph["criticalPath"] == ["plan", "flaky", "join"]
