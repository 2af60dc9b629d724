"""The result cache (SPEC section 8) through the real CLI with real subprocess agents: the
agents' own ledger says whether a provider was called. A hit (cached, free, naming the
execution that paid), misses on anything that decides the answer, `--no-cache` and
`--refresh-cache`, failures and invalid outputs never stored, expiry, the `ax cache`
commands, two racing executions paying once, corrupt rows, forEach items, bad settings,
the money saved, and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents.vendor_api import VendorAPI
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    command_agent,
    events,
    finish,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)


def cached_flow(*steps: dict[str, Any], **config: Any) -> dict[str, Any]:
    return workflow(list(steps), config={"cache": True, **config})


def run_json(run_ax: RunAx, tmp_path: Path, data: dict[str, Any], *flags: str) -> dict[str, Any]:
    result = run_ax(
        "workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json", *flags
    )
    assert "Traceback" not in result.stderr, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    document["_exit"] = result.returncode
    document["_stderr"] = result.stderr
    return document


def calls(ledger: Path) -> list[str]:
    """The step keys whose agent started, in order."""
    return [run.step for run in agent_runs(ledger)]


def cache_list(run_ax: RunAx) -> list[dict[str, Any]]:
    result = run_ax("cache", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def test_a_second_run_is_answered_from_the_cache(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    data = cached_flow(step("parse", "ax:output=[1,2]"), step("report", "sum {{parse}}", ["parse"]))
    first = run_json(run_ax, tmp_path, data)
    assert first["_exit"] == 0 and calls(ledger) == ["parse", "report"]
    assert "cached" not in first["steps"]["parse"] and first["savedUsd"] is None
    second = run_json(run_ax, tmp_path, data)
    assert second["_exit"] == 0
    assert calls(ledger) == ["parse", "report"]  # no provider was called
    assert second["stepResults"] == first["stepResults"]
    for key in ("parse", "report"):
        entry = second["steps"][key]
        assert entry["state"] == "completed" and entry["cached"] is True
        assert entry["cachedFrom"] == first["executionId"]
        assert (entry["tokensIn"], entry["tokensOut"], entry["costUsd"]) == (0, 0, 0)
        assert entry["provider"] == "command" and entry["attempts"] == 1
    assert second["savedUsd"] == 0  # these agents report no cost
    completed = [e for e in events(run_ax, second["executionId"]) if e["type"] == "step_completed"]
    assert [(e["stepKey"], e["data"]["cached"], e["data"]["cachedFrom"]) for e in completed] == [
        ("parse", True, first["executionId"]),
        ("report", True, first["executionId"]),
    ]
    entries = cache_list(run_ax)
    assert {e["stepKey"] for e in entries} == {"parse", "report"}
    assert all(e["executionId"] == first["executionId"] for e in entries)
    assert all(e["hits"] == 1 and e["expiresAt"] is None for e in entries)
    status = run_ax("workflow", "status", second["executionId"])
    assert "saved $0.0000 by 2 cached steps" in status.stdout


def test_a_changed_prompt_or_agent_setting_misses(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    def flow(prompt: str = "review {{who}}", **agent: Any) -> dict[str, Any]:
        data = cached_flow(step("review", prompt))
        data["agents"]["rec"] = command_agent(**agent)
        return data

    def run(data: dict[str, Any], who: str = "ann") -> dict[str, Any]:
        path = write_workflow(tmp_path, data)
        result = run_ax("workflow", "run", str(path), "--context", json.dumps({"who": who}),
                        "--format", "json")  # fmt: skip
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    run(flow())
    variants = [
        (flow(), "bob"),  # the same template, rendered differently
        (flow("review {{who}} closely"), "ann"),
        (flow(model="big-model"), "ann"),
        (flow(temperature=0.5), "ann"),
        (flow(systemPrompt="Be terse."), "ann"),
        (flow(env={"MODE": "strict"}), "ann"),
        ({**flow(), "steps": [{**step("review", "review {{who}}"), "outputSchema": {}}]}, "ann"),
    ]
    for data, who in variants:
        before = len(calls(ledger))
        document = run(data, who)
        assert len(calls(ledger)) == before + 1, data
        assert "cached" not in document["steps"]["review"]
    before = len(calls(ledger))
    assert run(flow())["steps"]["review"]["cached"] is True  # the first one still hits
    renamed = flow()
    renamed["steps"][0]["key"] = "other-step"  # not part of the key: same request
    assert run(renamed)["steps"]["other-step"]["cached"] is True
    assert len(calls(ledger)) == before


def test_no_cache_neither_reads_nor_writes(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = cached_flow(step("a"))
    assert run_json(run_ax, tmp_path, data, "--no-cache")["_exit"] == 0
    assert cache_list(run_ax) == [] and calls(ledger) == ["a"]
    filled = run_json(run_ax, tmp_path, data)
    assert calls(ledger) == ["a", "a"]
    (stored,) = cache_list(run_ax)
    skipped = run_json(run_ax, tmp_path, data, "--no-cache")
    assert calls(ledger) == ["a", "a", "a"] and "cached" not in skipped["steps"]["a"]
    assert cache_list(run_ax) == [stored]  # not hit, not overwritten
    assert stored["executionId"] == filled["executionId"]


def test_refresh_cache_calls_the_provider_and_overwrites(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    data = cached_flow(step("a"))
    run_json(run_ax, tmp_path, data)
    refreshed = run_json(run_ax, tmp_path, data, "--refresh-cache")
    assert refreshed["_exit"] == 0 and calls(ledger) == ["a", "a"]
    assert "cached" not in refreshed["steps"]["a"]
    (entry,) = cache_list(run_ax)
    assert entry["executionId"] == refreshed["executionId"] and entry["hits"] == 0
    hit = run_json(run_ax, tmp_path, data)
    assert hit["steps"]["a"]["cachedFrom"] == refreshed["executionId"]
    both = run_ax("workflow", "run", str(write_workflow(tmp_path, data)), "--no-cache",
                  "--refresh-cache")  # fmt: skip
    both.assert_clean_error()
    assert "exclude each other" in both.stderr


def test_resume_takes_the_cache_flags_for_what_it_runs(
    run_ax: RunAx, tmp_path: Path, ledger: Path, ax_env: dict[str, str]
) -> None:
    gate = tmp_path / "gate"
    data = cached_flow(
        step("hold", f"ax:wait-file={gate}", cache=False), step("b", "after", ["hold"])
    )
    gate.touch()
    filled = run_json(run_ax, tmp_path, data)
    gate.unlink()
    runner = start_ax(
        ["workflow", "run", str(write_workflow(tmp_path, data)), "--format", "json"],
        env=ax_env, cwd=tmp_path,
    )  # fmt: skip
    wait_until(lambda: calls(ledger).count("hold") == 2)
    runs = json.loads(run_ax("workflow", "runs", "--limit", "1", "--format", "json").stdout)
    execution_id = runs[0]["executionId"]
    assert execution_id != filled["executionId"]
    assert run_ax("workflow", "pause", execution_id).returncode == 0
    gate.touch()
    assert finish(runner)[0] == 4  # paused after `hold`, before `b`
    result = run_ax("workflow", "resume", execution_id, "--no-cache", "--format", "json")
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert "cached" not in resumed["steps"]["b"] and calls(ledger).count("b") == 2
    (entry,) = cache_list(run_ax)  # neither read nor written
    assert (entry["executionId"], entry["hits"]) == (filled["executionId"], 0)


def test_failed_and_schema_invalid_outputs_are_never_cached(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    data = cached_flow(
        step("broken", "ax:fail-always", optional=True),
        step("shapeless", "ax:output=[1]", optional=True, outputSchema={"type": "object"}),
        step("flaky", "ax:fail-attempts=1", retryPolicy={"maxRetries": 1, "retryDelayMs": 0}),
    )
    first = run_json(run_ax, tmp_path, data)
    assert first["steps"]["broken"]["state"] == "failed"
    assert first["steps"]["shapeless"]["errorKind"] == "invalid_output"
    (entry,) = cache_list(run_ax)  # only the retried step's successful second attempt
    assert entry["stepKey"] == "flaky"
    second = run_json(run_ax, tmp_path, data)
    # The failures asked their provider again; the stored answer did not.
    assert sorted(calls(ledger)) == sorted(["broken", "shapeless"] * 2 + ["flaky"] * 2)
    assert second["steps"]["flaky"]["cached"] is True
    assert "cached" not in second["steps"]["broken"]


def test_an_entry_answers_only_within_its_ttl(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = workflow(
        [step("brief", "b", cache={"ttlMs": 1}), step("long", "l", cache={"ttlMs": 3_600_000})]
    )
    first = run_json(run_ax, tmp_path, data)
    second = run_json(run_ax, tmp_path, data)  # a process start later: past 1 ms
    assert "cached" not in second["steps"]["brief"] and second["steps"]["long"]["cached"]
    assert calls(ledger).count("brief") == 2 and calls(ledger).count("long") == 1
    entries = {e["stepKey"]: e for e in cache_list(run_ax)}
    assert entries["brief"]["executionId"] == second["executionId"]  # overwritten
    assert entries["brief"]["expired"] is True and entries["long"]["expired"] is False
    assert entries["long"]["executionId"] == first["executionId"]
    pruned = run_ax("cache", "prune", "--format", "json")
    assert json.loads(pruned.stdout)["removed"] == 1
    assert [e["stepKey"] for e in cache_list(run_ax)] == ["long"]


def test_an_entry_older_than_the_asking_steps_ttl_does_not_answer_it(
    run_ax: RunAx, tmp_path: Path, ledger: Path
) -> None:
    """The TTL is also the asking step's: an answer stored for good (`cache: true`) is too
    old for a step that accepts one of at most 1 ms, yet fresh enough for one of an hour."""
    run_json(run_ax, tmp_path, workflow([step("ask", "q", cache=True)]))
    hour = run_json(run_ax, tmp_path, workflow([step("ask", "q", cache={"ttlMs": 3_600_000})]))
    assert hour["steps"]["ask"]["cached"] is True
    brief = run_json(run_ax, tmp_path, workflow([step("ask", "q", cache={"ttlMs": 1})]))
    assert "cached" not in brief["steps"]["ask"]
    assert calls(ledger).count("ask") == 2  # the first run and the 1 ms one


def test_the_cache_commands(run_ax: RunAx, tmp_path: Path) -> None:
    assert run_ax("cache", "list").stderr.strip() == "The result cache is empty."
    run_json(run_ax, tmp_path, cached_flow(step("a"), step("b", "other")))
    entries = cache_list(run_ax)
    assert len(entries) == 2 and all(len(e["key"]) == 64 for e in entries)
    table = run_ax("cache", "list")
    assert entries[0]["key"][:12] in table.stdout and "never" in table.stdout
    unknown = run_ax("cache", "clear", entries[0]["key"][:10], "0" * 12)
    unknown.assert_clean_error()
    assert "no cache entry with key '000000000000'" in unknown.stderr
    assert len(cache_list(run_ax)) == 2  # nothing removed
    cleared = run_ax("cache", "clear", entries[0]["key"][:10])
    assert cleared.stdout.strip() == "Removed 1 cache entry."
    assert [e["key"] for e in cache_list(run_ax)] == [entries[1]["key"]]
    run_ax("cache", "prune", "--older-than", "1h0").assert_clean_error()
    kept = run_ax("cache", "prune", "--older-than", "7d", "--format", "json")
    assert json.loads(kept.stdout) == {"removed": 0, "keys": []}
    old = run_ax("cache", "prune", "--older-than", "0s")
    assert old.stdout.strip() == "Removed 1 cache entry (expired or older than 0s)."
    run_json(run_ax, tmp_path, cached_flow(step("a"), step("b", "other")))
    everything = run_ax("cache", "clear", "--format", "json")
    assert json.loads(everything.stdout)["removed"] == 2 and cache_list(run_ax) == []


def test_two_racing_executions_call_the_provider_once(
    run_ax: RunAx, tmp_path: Path, ledger: Path, ax_env: dict[str, str]
) -> None:
    go, started = tmp_path / "go", tmp_path / "started"
    data = cached_flow(step("slow", f"ax:announce={started} ax:wait-file={go}"))
    path = write_workflow(tmp_path, data)
    args = ["workflow", "run", str(path), "--format", "json"]
    first = start_ax(args, env=ax_env, cwd=tmp_path)
    wait_until(started.exists)  # the first runner holds the key's lease, its agent waits
    second = start_ax(args, env=ax_env, cwd=tmp_path)
    db = sqlite3.connect(ax_env["AX_DB"])

    def second_started() -> bool:
        rows = db.execute(
            "SELECT COUNT(*) FROM workflow_events WHERE type = 'step_started'"
        ).fetchone()
        return bool(rows[0] == 2)

    wait_until(second_started)  # the second is inside its attempt: waiting for the answer
    time.sleep(0.5)  # time enough for a (wrong) second call to begin
    go.touch()
    code_a, out_a, err_a = finish(first)
    code_b, out_b, err_b = finish(second)
    db.close()
    assert (code_a, code_b) == (0, 0), err_a + err_b
    a, b = json.loads(out_a), json.loads(out_b)
    assert calls(ledger) == ["slow"]
    assert "cached" not in a["steps"]["slow"]
    assert b["steps"]["slow"]["cached"] is True
    assert b["steps"]["slow"]["cachedFrom"] == a["executionId"]
    assert b["stepResults"] == a["stepResults"]


def test_a_corrupt_entry_is_reported_and_replaced(
    run_ax: RunAx, tmp_path: Path, ledger: Path, ax_env: dict[str, str]
) -> None:
    data = cached_flow(step("a"))
    run_json(run_ax, tmp_path, data)
    (entry,) = cache_list(run_ax)
    with sqlite3.connect(ax_env["AX_DB"]) as db:
        db.execute("UPDATE workflow_cache SET output = '{not json'")
    listed = run_ax("cache", "list")
    listed.assert_clean_error()
    assert f"cache entry {entry['key']} is corrupt" in listed.stderr
    assert f"ax cache clear {entry['key']}" in listed.stderr
    rerun = run_json(run_ax, tmp_path, data)
    assert rerun["_exit"] == 0 and calls(ledger) == ["a", "a"]  # a miss
    assert "cached" not in rerun["steps"]["a"]
    assert f"warning: cache entry {entry['key']} is corrupt" in rerun["_stderr"]
    (replaced,) = cache_list(run_ax)
    assert replaced["executionId"] == rerun["executionId"]


def test_for_each_items_share_answers(run_ax: RunAx, tmp_path: Path, ledger: Path) -> None:
    data = cached_flow(
        step("files", 'ax:output=["x.py","y.py","x.py"]'),
        step(
            "review", "review {{file}}", ["files"],
            forEach={"items": "steps.files.output", "as": "file"},
        ),
    )  # fmt: skip
    first = run_json(run_ax, tmp_path, data)
    assert first["_exit"] == 0
    # Items 0 and 2 ask the same: one call, the other waits for its answer.
    assert sorted(calls(ledger)) == ["files", "review[0]", "review[1]"]
    assert first["steps"]["review[2]"]["cached"] is True
    assert first["steps"]["review[2]"]["cachedFrom"] == first["executionId"]
    assert first["stepResults"]["review"][2] == first["stepResults"]["review"][0]
    second = run_json(run_ax, tmp_path, data)
    assert len(calls(ledger)) == 3
    assert all(second["steps"][f"review[{i}]"]["cached"] for i in range(3))
    assert second["stepResults"] == first["stepResults"]


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ({"steps": [{"key": "a", "agent": "rec", "prompt": "p", "cache": {"ttlMs": -1}}]},
         "steps[0].cache.ttlMs"),
        ({"config": {"cache": {"ttlMs": -1}}}, "config.cache.ttlMs"),
        ({"steps": [{"key": "a", "agent": "rec", "prompt": "p", "cache": "yes"}]},
         "steps[0].cache"),
        ({"steps": [{"key": "a", "approval": {"message": "ok?"}, "cache": True}]},
         "steps[0].cache"),
    ],
)  # fmt: skip
def test_bad_cache_settings_are_validation_errors(
    run_ax: RunAx, tmp_path: Path, setting: dict[str, Any], where: str
) -> None:
    data = {**workflow([step("a")]), **setting}
    result = run_ax("workflow", "validate", str(write_workflow(tmp_path, data)))
    result.assert_clean_error()
    assert f"workflow.json: {where}: " in result.stderr


@pytest.fixture
def vendor_api() -> Iterator[VendorAPI]:
    api = VendorAPI().start()
    try:
        yield api
    finally:
        api.stop()


def test_usage_shows_the_money_a_hit_saved(
    run_ax: RunAx, tmp_path: Path, vendor_api: VendorAPI
) -> None:
    data = cached_flow(step("summary", "Summarise the diff", agent="writer"))
    data["agents"]["writer"] = {
        "provider": "openai", "baseUrl": f"{vendor_api.url}/v1", "model": "gpt-4o-mini",
        "apiKeyEnv": "AX_CACHE_TEST_KEY",
    }  # fmt: skip
    env = {"AX_CACHE_TEST_KEY": "sk-cache-test-1234"}
    path = str(write_workflow(tmp_path, data))
    paid = json.loads(run_ax("workflow", "run", path, "--format", "json", env=env).stdout)
    cost = paid["steps"]["summary"]["costUsd"]
    assert cost > 0 and len(vendor_api.model_calls()) == 1
    free = json.loads(run_ax("workflow", "run", path, "--format", "json", env=env).stdout)
    assert len(vendor_api.model_calls()) == 1
    assert free["costUsd"] == 0 and free["savedUsd"] == pytest.approx(cost)
    assert free["steps"]["summary"]["savedUsd"] == pytest.approx(cost)
    (entry,) = cache_list(run_ax)
    assert entry["costUsd"] == pytest.approx(cost) and entry["model"] == "gpt-4o-mini"
    status = run_ax("workflow", "status", free["executionId"])
    assert f"saved ${cost:.4f} by 1 cached step" in status.stdout


@pytest.mark.postgres
def test_a_hit_over_postgres(run_ax: RunAx, tmp_path: Path, ledger: Path, pg_url: str) -> None:
    env = {"AX_DB": pg_url}
    path = str(write_workflow(tmp_path, cached_flow(step("a"), step("b", "x {{a}}", ["a"]))))
    first = run_ax("workflow", "run", path, "--format", "json", env=env)
    second = run_ax("workflow", "run", path, "--format", "json", env=env)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    document = json.loads(second.stdout)
    assert calls(ledger) == ["a", "b"]
    assert document["steps"]["b"]["cachedFrom"] == json.loads(first.stdout)["executionId"]
    listed = run_ax("cache", "list", "--format", "json", env=env)
    assert [e["hits"] for e in json.loads(listed.stdout)] == [1, 1]
