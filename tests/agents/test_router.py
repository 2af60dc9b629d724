"""The router with real providers against loopback servers: fallback in order, circuit
breakers, the default provider order, costs from the price table, no leaked keys."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from automatosx.agents.base import ProviderResult
from automatosx.agents.circuit_breaker import BreakerBoard
from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from tests.agents.conftest import make_call
from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI

KEY = "sk-router-SECRET-5555555555"
FALLBACK_COMMAND = [sys.executable, "-c", "print('served by the fallback')"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AX_ROUTER_KEY", KEY)


def agent_at(api: VendorAPI, providers: list[Any], **fields: Any) -> AgentSpec:
    """Both HTTP providers reach the same loopback server, which speaks both APIs; the
    request path tells which provider made a call."""
    return AgentSpec(
        providers=providers, base_url=f"{api.url}/v1", api_key_env="AX_ROUTER_KEY",
        model="gpt-4o-mini", **fields,
    )  # fmt: skip


def router_for(agent: AgentSpec, tmp_path: Path, **kwargs: Any) -> Router:
    registry = AgentRegistry.load(workdir=tmp_path, inline={"tester": agent})
    return Router(registry, **kwargs)


def run(router: Router, agent: AgentSpec, workdir: Path) -> ProviderResult:
    call = make_call(agent, agent_name="tester", workdir=workdir)
    result: ProviderResult = asyncio.run(router.run(call))
    return result


def fails(router: Router, agent: AgentSpec, workdir: Path) -> StepError:
    with pytest.raises(StepError) as caught:
        run(router, agent, workdir)
    return caught.value


def paths(api: VendorAPI) -> list[str]:
    return [r.path for r in api.model_calls()]


@pytest.mark.parametrize(
    ("status", "headers"),
    [(429, {"retry_after": "2"}), (503, {}), (401, {})],
    ids=["rate_limit", "unavailable", "auth_error"],
)
def test_falls_back_to_the_next_provider(
    vendor_api: VendorAPI, tmp_path: Path, status: int, headers: dict[str, str]
) -> None:
    vendor_api.fail_next(status, "first provider refuses", **headers)
    agent = agent_at(vendor_api, ["openai", "anthropic"])
    result = run(router_for(agent, tmp_path, breakers=BreakerBoard()), agent, tmp_path)
    assert result.provider == "anthropic" and result.output == "hello from loopback"
    assert paths(vendor_api) == ["/v1/chat/completions", "/v1/messages"]


def test_an_ordinary_error_goes_back_to_the_engine_without_fallback(
    vendor_api: VendorAPI, tmp_path: Path
) -> None:
    vendor_api.fail_next(500, "one bad answer")
    agent = agent_at(vendor_api, ["openai", "anthropic"])
    error = fails(router_for(agent, tmp_path, breakers=BreakerBoard()), agent, tmp_path)
    assert error.kind == "provider_error" and "one bad answer" in error.message
    assert paths(vendor_api) == ["/v1/chat/completions"]


def test_unavailable_providers_are_skipped(vendor_api: VendorAPI, tmp_path: Path) -> None:
    agent = agent_at(
        vendor_api,
        ["claude-code", "openai"],
        env={"PATH": str(tmp_path)},  # no claude here
    )
    result = run(router_for(agent, tmp_path, breakers=BreakerBoard()), agent, tmp_path)
    assert result.provider == "openai"


def test_when_every_provider_fails_the_error_names_each_without_the_key(
    vendor_api: VendorAPI, tmp_path: Path
) -> None:
    vendor_api.fail_next(429, f"limit for key {KEY}", retry_after="4")
    vendor_api.fail_next(529, f"overloaded, key {KEY}")
    agent = agent_at(vendor_api, ["openai", "anthropic"])
    error = fails(router_for(agent, tmp_path, breakers=BreakerBoard()), agent, tmp_path)
    assert error.kind == "provider_unavailable"
    assert (
        "openai: rate_limit" in error.message and "anthropic: provider_unavailable" in error.message
    )
    assert error.retry_after_s == 4.0
    assert KEY not in str(error)


def test_breaker_opens_after_repeated_failures_and_half_opens_after_cooldown(
    vendor_api: VendorAPI, tmp_path: Path
) -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=2, cooldown_s=60, clock=clock)
    agent = agent_at(vendor_api, ["openai", "command"], command=FALLBACK_COMMAND)
    router = router_for(agent, tmp_path, breakers=board)
    vendor_api.fail_next(500, "broken", times=2)

    first = fails(router, agent, tmp_path)  # one error: the engine's retry policy decides
    assert first.kind == "provider_error"
    second = run(router, agent, tmp_path)  # the second in a row opens the breaker: fall back
    assert second.provider == "command" and second.output == "served by the fallback"
    assert board.snapshot()[f"openai|{vendor_api.url}/v1"] == "open"

    third = run(router, agent, tmp_path)  # open: openai is not even called
    assert third.provider == "command"
    assert len(vendor_api.model_calls()) == 2

    clock.now += 61  # cooldown over: one trial call reaches openai, which has recovered
    fourth = run(router, agent, tmp_path)
    assert fourth.provider == "openai"
    assert board.snapshot()[f"openai|{vendor_api.url}/v1"] == "closed"


def test_failed_trial_reopens_the_breaker(vendor_api: VendorAPI, tmp_path: Path) -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=1, cooldown_s=10, clock=clock)
    agent = agent_at(vendor_api, ["openai"])
    router = router_for(agent, tmp_path, breakers=board)
    vendor_api.fail_next(503, "down", times=2)
    assert fails(router, agent, tmp_path).kind == "provider_unavailable"
    fast = fails(router, agent, tmp_path)  # open, and nothing to fall back to: fail fast
    assert "circuit open" in fast.message and fast.kind == "provider_unavailable"
    clock.now += 11
    assert "down" in fails(router, agent, tmp_path).message  # the trial call failed
    assert "circuit open" in fails(router, agent, tmp_path).message
    assert len(vendor_api.model_calls()) == 2


def test_command_and_python_providers_have_no_breaker(tmp_path: Path) -> None:
    failing = AgentSpec(provider="command", command=[sys.executable, "-c", "raise SystemExit(3)"])
    router = router_for(failing, tmp_path, breakers=BreakerBoard(failure_threshold=1))
    for _ in range(3):
        assert "exited with code 3" in fails(router, failing, tmp_path).message


def test_cost_comes_from_the_price_table_and_prices_yaml(
    vendor_api: VendorAPI, tmp_path: Path
) -> None:
    agent = agent_at(vendor_api, ["openai"])
    result = run(router_for(agent, tmp_path, breakers=BreakerBoard()), agent, tmp_path)
    assert result.cost_usd == pytest.approx((INPUT_TOKENS * 0.15 + OUTPUT_TOKENS * 0.6) / 1e6)

    project = tmp_path / "project"
    (project / ".automatosx").mkdir(parents=True)
    (project / ".automatosx" / "prices.yaml").write_text(
        "gpt-4o-mini: {input: 1000000, output: 2000000}\n"
    )
    result = run(router_for(agent, project, breakers=BreakerBoard()), agent, project)
    assert result.cost_usd == pytest.approx(INPUT_TOKENS + 2 * OUTPUT_TOKENS)


def test_agent_without_provider_uses_the_first_available_default(
    vendor_api: VendorAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", vendor_api.url)
    no_clis = {"PATH": str(tmp_path)}
    agent = AgentSpec(env=no_clis)
    router = router_for(agent, tmp_path)
    assert router.provider_order(agent) == ["anthropic"]  # no CLI on PATH, no OpenAI key
    result = run(router, agent, tmp_path)
    assert result.provider == "anthropic"
    assert vendor_api.model_calls()[0].headers["x-api-key"] == KEY

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert router.provider_order(AgentSpec(env=no_clis)) == ["local"]  # llama.cpp installed


def test_no_available_provider_fails_validation_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    stranded = AgentSpec(env={"PATH": str(tmp_path)}, model_path=str(tmp_path / "none.gguf"))
    router = router_for(stranded, tmp_path)
    (issue,) = router.check_agents([("steps[0].agent", "tester")])
    assert issue.path == "steps[0].agent"
    for hint in ("@anthropic-ai/claude-code", "@google/gemini-cli", "@openai/codex",
                 "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "none.gguf"):  # fmt: skip
        assert hint in issue.message
    error = fails(router, stranded, tmp_path)
    assert error.kind == "provider_unavailable" and "OPENAI_API_KEY" in error.message
