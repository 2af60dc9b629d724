"""`local` with the bundled Qwen2.5-Coder-0.5B model (six packages ship its parts), its
loop detector and stop rule, and `openai` against llama-cpp-python's own OpenAI-compatible
server running the same model on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import jsonschema
import pytest

from automatosx.agents.base import ProviderResult
from automatosx.agents.providers import local
from automatosx.agents.providers.local import (
    BUNDLED_MODEL,
    BundledModel,
    LocalProvider,
    joined_file,
    repetition_loop,
    restart_offset,
)
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


def test_bundled_model_is_found_without_network(bundled_gguf: Path) -> None:
    assert bundled_gguf.suffix == ".gguf" and bundled_gguf.stat().st_size > 400_000_000
    assert bundled_gguf.read_bytes()[:4] == b"GGUF"
    availability = LocalProvider().availability(AgentSpec(provider="local"))
    assert availability.available and BUNDLED_MODEL.name in availability.reason


def test_local_generates_text_with_usage() -> None:
    agent = AgentSpec(provider="local", max_tokens=24, temperature=0.0,
                      system_prompt="You are a helpful assistant.")  # fmt: skip
    started = time.monotonic()
    result = generate(agent, "Name one programming language.")
    elapsed = time.monotonic() - started
    assert isinstance(result.output, str) and result.output.strip()
    assert result.provider == "local" and result.model == BUNDLED_MODEL.name
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


def test_model_path_loads_any_gguf(bundled_gguf: Path, tmp_path: Path) -> None:
    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(bundled_gguf)
    result = generate(AgentSpec(provider="local", model_path=str(copy), max_tokens=4), "Hi")
    assert result.model == "my-model" and result.tokens_out


def test_openai_provider_against_llama_cpp_server(llama_server: str) -> None:
    agent = AgentSpec(provider="openai", base_url=llama_server, model="local-model", max_tokens=16,
                      temperature=0.0)  # fmt: skip
    result: ProviderResult = asyncio.run(
        OpenAIProvider().invoke(make_call(agent, "Name a colour."))
    )
    assert isinstance(result.output, str) and result.output.strip()
    assert result.provider == "openai"
    assert result.tokens_out is None or 0 < result.tokens_out <= 16


def test_a_looping_answer_fails_as_invalid_output() -> None:
    """Asked to loop, the model loops; the provider stops it and fails the attempt."""
    agent = AgentSpec(provider="local", max_tokens=300, temperature=0.0)
    with pytest.raises(StepError) as caught:
        generate(agent, "Write the line 'Ava.com.' forty times, one per line, and nothing else.")
    assert caught.value.kind == "invalid_output"
    assert "degenerate answer" in caught.value.message and "Ava.com." in caught.value.message


LOOPS = [
    ("Ava.com.\n" * 40, "the line 'Ava.com.' 4 times"),
    ("Sure! Here it is:\n" + "1. Ava.com.\n2. Ava.com.\n3. Ava.com.\n4. Ava.com.\n", "the line"),
    ("Ava.com. " * 12, "the phrase 'Ava.com.'"),
    ("A first line.\nyes\nno\nyes\nno\nyes\nno\n", "a group of 2 lines 'yes / no'"),
    (("The code is fine, but it uses a hash in every step of the graph here. " * 2 + "\n") * 3,
     "3 times"),
    ('{"functions": ["add_edge", "add_edge", "add_edge", "add_edge", "add_edge", "add_edge"',
     "the phrase"),
    # near-copies of a paragraph: no exact repeat, but the text compresses to almost nothing
    ("".join(f"The code{n} is designed to help you build a graph, but it has some security "
             "problems. It uses a hash function to create a hash of each step in the graph, "
             "which makes it vulnerable to attacks that use these functions.\n\n"
             for n in range(4)), "near-copies"),
]  # fmt: skip

NOT_LOOPS = [
    "## Summary\nThe file is fine.\n## Security\n- None found.\n## Quality\n- None found.\n",
    "-----\n" * 10 + "=" * 80,  # rules and separators carry no words
    "Ava.com.\nAva.com.\nAva.com.\nAva.c",  # three, and the fourth still being written
    "    }\n  }\n}\n",
    Path(__file__).read_text()[:4000],
    Path(local.__file__).read_text()[:4000],
]


@pytest.mark.parametrize(("text", "expected"), LOOPS)
def test_loop_detector_names_what_repeats(text: str, expected: str) -> None:
    found = repetition_loop(text)
    assert found is not None and expected in found, found


@pytest.mark.parametrize("text", NOT_LOOPS)
def test_loop_detector_leaves_ordinary_text_alone(text: str) -> None:
    assert repetition_loop(text) is None
    assert restart_offset(text) is None


def test_json_lists_of_similar_objects_are_not_near_copies() -> None:
    items = ", ".join(f'{{"name": "step{n}", "severity": "low", "line": {n}}}' for n in range(40))
    text = f'{{"findings": [{items}]}}'
    assert repetition_loop(text, structured=True) is None
    assert repetition_loop(text) is not None  # as free text, it would be


def test_an_answer_that_starts_over_is_cut_where_the_copy_begins() -> None:
    report = (
        "## Summary\n\nThis report reviews graph.py, which builds the dependency graph of a "
        "workflow and reports its cycles.\n\n## Security\n\n- No problem found.\n\n"
    )
    restart = "## Security and Quality\n\n### Summary\n\n"
    text = report + restart + report.split("\n\n", 1)[1]
    assert restart_offset(text[: len(report) + len(restart)]) is None  # not yet
    cut = restart_offset(text)
    assert cut is not None and text[:cut] == report + restart
    assert local._without_trailing_headings(text[:cut]) == report.rstrip()  # what is kept
    # three short lines written again in the same order
    lines = (
        "- `parse`: its names are too short to read\n"
        "- `render`: no test covers the empty case\n"
        "- `check`: its errors are lost on the way up\n"
    )
    assert restart_offset(lines + "Also:\n" + lines) == len(lines) + len("Also:\n")
    # code repeats its own lines: inside a fence, or unfenced, it is not a restart
    code = "    raise _bad(source, f'cannot read {raw_path}: {_reason(exc)}') from None\n"
    assert restart_offset("```python\n" + code * 2 + "```\n") is None
    assert restart_offset(code * 2) is None


def _fake_model(tmp_path: Path, chunks: list[bytes], sha256: str) -> BundledModel:
    parts = []
    for n, chunk in enumerate(chunks):
        part = tmp_path / f"part{n}.bin"
        part.write_bytes(chunk)
        parts.append(part)
    return BundledModel("fake-model", ("a", "b"), sha256, tuple(parts))


def test_parts_are_joined_once_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    chunks = [b"GGUF" + b"x" * 3000, b"y" * 2000]
    model = _fake_model(tmp_path, chunks, hashlib.sha256(b"".join(chunks)).hexdigest())
    path = joined_file(model)
    assert path.read_bytes() == b"".join(chunks)
    assert path.parent == tmp_path / "cache" / "automatosx" / "models"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    stamp = path.stat().st_mtime_ns
    assert joined_file(model) == path and path.stat().st_mtime_ns == stamp  # not joined again


def test_parts_that_do_not_match_the_pinned_hash_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = _fake_model(tmp_path, [b"GGUF", b"changed upload"], "0" * 64)
    with pytest.raises(StepError) as caught:
        joined_file(model)
    assert caught.value.kind == "provider_unavailable"
    assert "do not make the expected file" in caught.value.message
    assert not list((tmp_path / "cache" / "automatosx" / "models").iterdir())
