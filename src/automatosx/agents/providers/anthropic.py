"""`anthropic`: the Anthropic Messages API over HTTP.

The key comes from the variable the agent's `apiKeyEnv` names (default
`ANTHROPIC_API_KEY`) and travels only in the `x-api-key` header. `baseUrl` accepts either
the host (`https://api.anthropic.com`, as `ANTHROPIC_BASE_URL` is usually written) or the
`/v1` root; without it, `ANTHROPIC_BASE_URL` is honoured as the SDKs do. HTTP 429 maps
to `rate_limit` with the server's `retry-after`, 529 (overloaded) and 502-504 to
`provider_unavailable`, 401/403 to `auth_error`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.http_api import (
    pooled_client,
    request_timeout,
    status_error,
    transport_error,
)
from automatosx.agents.providers.prompting import prompt_with_schema, read_output
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from automatosx.secrets import redact

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_MAX_TOKENS = 4096  # the API requires a bound; steps rarely need more
API_VERSION = "2023-06-01"


class AnthropicProvider:
    name = "anthropic"
    uses_breaker = True
    uses_io_loop = True

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        key_env = agent.api_key_env or DEFAULT_KEY_ENV
        if os.environ.get(key_env):
            return Availability(True, f"{key_env} set")
        return Availability(False, f"set {key_env}")

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        agent = call.agent
        url = messages_url(
            agent.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        )
        key = os.environ.get(agent.api_key_env or DEFAULT_KEY_ENV, "")
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        body = request_body(call)
        try:
            async with pooled_client() as client:
                response = await client.post(
                    url, json=body, headers=headers, timeout=request_timeout(call.timeout_s)
                )
        except httpx.HTTPError as exc:
            error = transport_error(self.name, url, exc)
            raise StepError(error.kind, redact(error.message, [key])) from None
        if response.status_code >= 400:
            raise status_error(
                self.name, response.status_code, response.headers, response.content, [key]
            )
        try:
            data = response.json()
        except ValueError:
            raise StepError("provider_error", "anthropic: the server sent malformed JSON") from None
        return ProviderResult(
            output=read_output(redact(answer_text(data), [key]), call.output_schema),
            provider=self.name,
            model=data.get("model") or body["model"],
            tokens_in=_usage(data, "input_tokens"),
            tokens_out=_usage(data, "output_tokens"),
        )


def messages_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def request_body(call: ProviderCall) -> dict[str, Any]:
    agent = call.agent
    prompt = prompt_with_schema(call.prompt, call.output_schema)
    body: dict[str, Any] = {
        "model": agent.model or DEFAULT_MODEL,
        "max_tokens": agent.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": prompt}],
    }
    if agent.system_prompt:
        body["system"] = agent.system_prompt
    if agent.temperature is not None:
        body["temperature"] = min(agent.temperature, 1.0)  # the API's range is 0..1
    return body


def answer_text(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise StepError("provider_error", "anthropic: the answer has no content list")
    return "".join(
        block.get("text", "")
        for block in data["content"]
        if isinstance(block, dict) and block.get("type") == "text"
    )


def _usage(data: dict[str, Any], field: str) -> int | None:
    usage = data.get("usage")
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


PROVIDER_CLASS = AnthropicProvider  # what `providers.provider_table` instantiates for this name
