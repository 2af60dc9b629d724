"""`openai`: any OpenAI-compatible `/v1/chat/completions` endpoint over HTTP.

OpenAI itself, or a server that speaks its API (Ollama, vLLM, llama.cpp's server, LM
Studio): the agent's `baseUrl` picks it, `apiKeyEnv` names the variable holding the key
(default `OPENAI_API_KEY`; local servers need none). Without `baseUrl`, `OPENAI_BASE_URL`
is honoured as the vendor SDKs do. The answer is streamed (server-sent
events) so a long generation keeps the connection visibly alive and the read timeout bounds
the gap between tokens, not the whole answer; usage arrives in the last chunk.
"""

from __future__ import annotations

import json
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
from automatosx.agents.providers.prompting import chat_messages, read_output
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from automatosx.secrets import redact

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIProvider:
    name = "openai"
    uses_breaker = True
    uses_io_loop = True

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        key_env = agent.api_key_env or DEFAULT_KEY_ENV
        if os.environ.get(key_env):
            return Availability(True, f"{key_env} set")
        base_url = endpoint(agent)
        if base_url != DEFAULT_BASE_URL:
            return Availability(True, f"server at {base_url} (no key needed)")
        return Availability(False, f"set {key_env} (or give the agent a baseUrl)")

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        agent = call.agent
        base_url = endpoint(agent)
        url = f"{base_url}/chat/completions"
        key = os.environ.get(agent.api_key_env or DEFAULT_KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = request_body(call, base_url)
        try:
            async with (
                pooled_client() as client,
                client.stream(
                    "POST", url, json=body, headers=headers, timeout=request_timeout(call.timeout_s)
                ) as response,
            ):
                if response.status_code >= 400:
                    raise status_error(
                        self.name,
                        response.status_code,
                        response.headers,
                        await response.aread(),
                        [key],
                    )
                stream = await read_stream(response)
        except httpx.HTTPError as exc:
            raise _redacted(transport_error(self.name, url, exc), key) from None
        model = stream.model or body["model"]
        return ProviderResult(
            output=read_output(redact(stream.text, [key]), call.output_schema),
            provider=self.name,
            model=model,
            tokens_in=stream.tokens_in,
            tokens_out=stream.tokens_out,
        )


def endpoint(agent: AgentSpec) -> str:
    """The API root: the agent's `baseUrl`, else `OPENAI_BASE_URL`, else OpenAI's."""
    return (agent.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def request_body(call: ProviderCall, base_url: str) -> dict[str, Any]:
    agent = call.agent
    body: dict[str, Any] = {
        "model": agent.model or DEFAULT_MODEL,
        "messages": chat_messages(call),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if agent.temperature is not None:
        body["temperature"] = agent.temperature
    if agent.max_tokens is not None:
        # OpenAI's own API renamed the field; compatible servers still read the old one.
        field = "max_completion_tokens" if base_url == DEFAULT_BASE_URL else "max_tokens"
        body[field] = agent.max_tokens
    if call.output_schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "step_output", "schema": call.output_schema},
        }
    return body


class StreamedAnswer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.model: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def read_stream(response: httpx.Response) -> StreamedAnswer:
    """Collect the deltas of an SSE stream (or a plain JSON answer from a server that
    ignores `stream`)."""
    answer = StreamedAnswer()
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        _take_chunk(answer, _json_object(await response.aread()), streamed=False)
        return answer
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        _take_chunk(answer, _json_object(data.encode()), streamed=True)
    return answer


def _take_chunk(answer: StreamedAnswer, chunk: dict[str, Any], *, streamed: bool) -> None:
    if isinstance(chunk.get("error"), dict):
        message = str(chunk["error"].get("message", chunk["error"]))
        raise StepError("provider_error", f"openai: error in stream: {message}"[:400])
    answer.model = chunk.get("model") or answer.model
    for choice in chunk.get("choices") or []:
        part = choice.get("delta" if streamed else "message") or {}
        if isinstance(part.get("content"), str):
            answer.parts.append(part["content"])
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        answer.tokens_in = usage.get("prompt_tokens", answer.tokens_in)
        answer.tokens_out = usage.get("completion_tokens", answer.tokens_out)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise StepError("provider_error", "openai: the server sent malformed JSON") from None
    if not isinstance(value, dict):
        raise StepError("provider_error", "openai: the server sent JSON that is not an object")
    return value


def _redacted(error: StepError, key: str) -> StepError:
    return StepError(error.kind, redact(error.message, [key]), retry_after_s=error.retry_after_s)


PROVIDER_CLASS = OpenAIProvider  # what `providers.provider_table` instantiates for this name
