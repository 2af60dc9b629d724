"""`openai` and `anthropic` against loopback servers speaking their APIs: requests, usage,
streaming, and every HTTP failure mapped to its contract error kind."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

from automatosx.agents.base import ProviderResult
from automatosx.agents.providers.anthropic import AnthropicProvider
from automatosx.agents.providers.openai import OpenAIProvider
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from tests.agents.conftest import make_call
from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI

KEY = "sk-test-SECRET-0123456789"


def invoke(provider: Any, agent: AgentSpec, **fields: Any) -> ProviderResult:
    result: ProviderResult = asyncio.run(provider.invoke(make_call(agent, **fields)))
    return result


def failure(provider: Any, agent: AgentSpec, **fields: Any) -> StepError:
    with pytest.raises(StepError) as caught:
        invoke(provider, agent, **fields)
    return caught.value


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AX_TEST_API_KEY", KEY)
    return "AX_TEST_API_KEY"


def openai_agent(api: VendorAPI, key_env: str, **fields: Any) -> AgentSpec:
    return AgentSpec(
        provider="openai",
        base_url=f"{api.url}/v1",
        api_key_env=key_env,
        model="gpt-4o-mini",
        **fields,
    )


def anthropic_agent(api: VendorAPI, key_env: str, **fields: Any) -> AgentSpec:
    return AgentSpec(
        provider="anthropic",
        base_url=api.url,
        api_key_env=key_env,
        model="claude-sonnet-4-5",
        **fields,
    )


def test_openai_streams_the_answer_with_usage(vendor_api: VendorAPI, api_key: str) -> None:
    vendor_api.reply = "three streamed words"
    agent = openai_agent(
        vendor_api, api_key, system_prompt="Be brief.", temperature=0.1, max_tokens=20
    )
    result = invoke(OpenAIProvider(), agent, prompt="Say three words.")
    assert result.output == "three streamed words"
    assert (result.provider, result.model) == ("openai", "gpt-4o-mini")
    assert (result.tokens_in, result.tokens_out) == (INPUT_TOKENS, OUTPUT_TOKENS)
    (request,) = vendor_api.model_calls()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["stream"] is True and request.body["max_tokens"] == 20
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say three words."},
    ]


def test_openai_structured_output_asks_for_the_schema(vendor_api: VendorAPI, api_key: str) -> None:
    vendor_api.reply = '```json\n{"functions": ["a", "b"]}\n```'
    schema = {"type": "object", "required": ["functions"]}
    result = invoke(OpenAIProvider(), openai_agent(vendor_api, api_key), output_schema=schema)
    assert result.output == {"functions": ["a", "b"]}
    body = vendor_api.model_calls()[0].body
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert json.dumps(schema, separators=(",", ":"), sort_keys=True) in str(body["messages"])


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "auth_error"),
        (403, "auth_error"),
        (500, "provider_error"),
        (503, "provider_unavailable"),
        (400, "provider_error"),
    ],
)
def test_openai_maps_http_errors(
    vendor_api: VendorAPI, api_key: str, status: int, kind: str
) -> None:
    vendor_api.fail_next(status, f"Incorrect API key provided: {KEY}")  # servers echo keys
    error = failure(OpenAIProvider(), openai_agent(vendor_api, api_key))
    assert error.kind == kind
    assert f"HTTP {status}" in error.message
    assert KEY not in str(error) and "***" in error.message


def test_openai_rate_limit_carries_retry_after(vendor_api: VendorAPI, api_key: str) -> None:
    vendor_api.fail_next(429, "slow down", retry_after="7")
    error = failure(OpenAIProvider(), openai_agent(vendor_api, api_key))
    assert (error.kind, error.retry_after_s) == ("rate_limit", 7.0)
    assert "slow down" in error.message


def test_openai_unreachable_server_is_unavailable(api_key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        agent = AgentSpec(provider="openai", base_url=f"http://127.0.0.1:{port}/v1")
        error = failure(OpenAIProvider(), agent)
    assert error.kind == "provider_unavailable"


def test_openai_slow_server_times_out(vendor_api: VendorAPI, api_key: str) -> None:
    vendor_api.delay_s = 2.0
    error = failure(OpenAIProvider(), openai_agent(vendor_api, api_key), timeout_s=0.3)
    assert error.kind == "timeout"


def test_openai_availability_needs_a_key_or_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider()
    assert not provider.availability(AgentSpec(provider="openai")).available
    assert "OPENAI_API_KEY" in provider.availability(AgentSpec(provider="openai")).reason
    assert provider.availability(AgentSpec(base_url="http://127.0.0.1:1/v1")).available
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    availability = provider.availability(AgentSpec(provider="openai"))
    assert availability.available and KEY not in availability.reason


def test_anthropic_messages_with_usage(vendor_api: VendorAPI, api_key: str) -> None:
    agent = anthropic_agent(vendor_api, api_key, system_prompt="You review code.")
    result = invoke(AnthropicProvider(), agent, prompt="Review this.")
    assert result.output == "hello from loopback"
    assert (result.tokens_in, result.tokens_out) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert result.model == "claude-sonnet-4-5"
    (request,) = vendor_api.model_calls()
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body["system"] == "You review code."
    assert request.body["max_tokens"] > 0
    assert request.body["messages"] == [{"role": "user", "content": "Review this."}]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "auth_error"),
        (500, "provider_error"),
        (529, "provider_unavailable"),
        (404, "provider_error"),
    ],
)
def test_anthropic_maps_http_errors(
    vendor_api: VendorAPI, api_key: str, status: int, kind: str
) -> None:
    vendor_api.fail_next(status, f"bad request with x-api-key {KEY}")
    error = failure(AnthropicProvider(), anthropic_agent(vendor_api, api_key))
    assert error.kind == kind
    assert KEY not in str(error)


def test_anthropic_rate_limit_carries_retry_after(vendor_api: VendorAPI, api_key: str) -> None:
    vendor_api.fail_next(429, "rate limited", retry_after="3")
    error = failure(AnthropicProvider(), anthropic_agent(vendor_api, api_key))
    assert (error.kind, error.retry_after_s) == ("rate_limit", 3.0)


def test_many_concurrent_calls_share_one_connection_pool(
    vendor_api: VendorAPI, api_key: str
) -> None:
    agent = openai_agent(vendor_api, api_key)

    async def burst() -> list[ProviderResult]:
        provider = OpenAIProvider()
        calls = [provider.invoke(make_call(agent, step_key=f"s{i}")) for i in range(50)]
        return await asyncio.gather(*calls)

    results = asyncio.run(burst())
    assert [r.output for r in results] == ["hello from loopback"] * 50
    assert len(vendor_api.model_calls()) == 50


def test_calls_beyond_the_in_flight_limit_wait_their_turn(
    vendor_api: VendorAPI, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-loop bound that keeps event-loop lag low under hundreds of parallel steps."""
    monkeypatch.setenv("AX_HTTP_MAX_IN_FLIGHT", "5")
    vendor_api.delay_s = 0.1
    agent = openai_agent(vendor_api, api_key)

    async def burst() -> list[ProviderResult]:
        provider = OpenAIProvider()
        calls = [provider.invoke(make_call(agent, step_key=f"s{i}")) for i in range(20)]
        return await asyncio.gather(*calls)

    assert len(asyncio.run(burst())) == 20
    assert vendor_api.max_in_flight == 5
