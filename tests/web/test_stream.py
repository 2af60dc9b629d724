"""The event stream (SPEC section 10) through a real server: every audit-log entry once, in
order, with its ID; a reconnect with `Last-Event-ID` gets exactly the rest; entries of a
running execution arrive as they are committed; the stream ends after the last entry of a
finished execution. In SQLite and in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunAx
from tests.web.conftest import Serve
from tests.web.support import cli_json, diamond, held_run, run_json


@pytest.fixture
def env(ax_env: dict[str, str], store_url: str) -> dict[str, str]:
    return {**ax_env, "AX_DB": store_url}


def messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's messages as {"id", "event", "data"} (comments and retry: left out)."""
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in message:
                yield message
            message = {}
        elif line.startswith("id: "):
            message["id"] = int(line[4:])
        elif line.startswith("event: "):
            message["event"] = line[7:]
        elif line.startswith("data: "):
            message["data"] = json.loads(line[6:])


def test_a_finished_execution_streams_its_whole_log_then_ends(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    execution_id = run_json(run_ax, tmp_path, diamond(), env)["executionId"]
    events = cli_json(run_ax, env, "workflow", "events", execution_id)
    server = serve(env["AX_DB"])
    url = f"{server.url}api/v1/executions/{execution_id[:8]}/stream"
    with httpx.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        got = list(messages(response))  # it closes by itself after `end`
    assert [m["data"] for m in got[:-1]] == events
    assert [m["id"] for m in got[:-1]] == [e["id"] for e in events]
    assert got[-1] == {"event": "end", "data": {"executionId": execution_id, "state": "completed"}}

    third = events[2]["id"]
    with httpx.stream("GET", url, headers={"Last-Event-ID": str(third)}, timeout=30) as response:
        rest = [m["data"] for m in messages(response) if "id" in m]
    assert rest == events[3:]
    bad = httpx.get(url, headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400 and "last-event-id" in bad.json()["error"].lower()


def test_a_running_execution_streams_entries_as_they_commit(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    runner, hold = held_run(tmp_path, env)
    server = serve(env["AX_DB"])
    (run,) = httpx.get(f"{server.url}api/v1/executions").json()
    seen: list[tuple[str, str | None]] = []
    url = f"{server.url}api/v1/executions/{run['executionId']}/stream"
    with httpx.stream("GET", url, timeout=30) as response:
        for message in messages(response):
            if message.get("event") == "end":
                assert message["data"]["state"] == "completed"
                break
            seen.append((message["data"]["type"], message["data"]["stepKey"]))
            if seen[-1] == ("step_started", "slow"):
                assert not any(key == "next" for _, key in seen)  # live: `next` has not run
                hold.touch()  # now let the run go on, while we listen
    assert runner.wait(30) == 0
    assert seen[-3:] == [
        ("step_started", "next"), ("step_completed", "next"), ("workflow_completed", None)
    ]  # fmt: skip
