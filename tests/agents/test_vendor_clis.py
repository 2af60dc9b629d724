"""The vendors' real CLIs (from npm) as providers, pointed at loopback servers that speak
their APIs: Claude Code -> Messages API, Codex -> Responses API, Gemini CLI ->
generateContent. Each runs with a throwaway HOME."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from automatosx.agents.base import ProviderResult
from automatosx.agents.providers.claude_code import ClaudeCodeProvider
from automatosx.agents.providers.codex import CodexProvider
from automatosx.agents.providers.gemini_cli import GeminiCliProvider
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from tests.agents.conftest import make_call
from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI

pytestmark = pytest.mark.timeout(600)  # the first test may install the CLIs from npm

KEY = "sk-cli-SECRET-9876543210"


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AX_TEST_VENDOR_KEY", KEY)
    return "AX_TEST_VENDOR_KEY"


def invoke(provider: Any, agent: AgentSpec, tmp_path: Path, **fields: Any) -> ProviderResult:
    call = make_call(agent, workdir=tmp_path, **fields)
    result: ProviderResult = asyncio.run(provider.invoke(call))
    return result


def failure(provider: Any, agent: AgentSpec, tmp_path: Path) -> StepError:
    with pytest.raises(StepError) as caught:
        invoke(provider, agent, tmp_path)
    return caught.value


def claude_agent(api: VendorAPI, env: dict[str, str], key_env: str, **fields: Any) -> AgentSpec:
    return AgentSpec(
        provider="claude-code", base_url=api.url, api_key_env=key_env, env=env, **fields
    )


def test_claude_code_answers_with_usage_and_cost(
    vendor_api: VendorAPI, cli_env: dict[str, str], key_env: str, tmp_path: Path
) -> None:
    agent = claude_agent(
        vendor_api, cli_env, key_env, model="claude-sonnet-4-5", system_prompt="You are terse."
    )
    started = time.monotonic()
    result = invoke(ClaudeCodeProvider(), agent, tmp_path, prompt="PROMPT-VIA-STDIN")
    print(f"claude-code call latency: {time.monotonic() - started:.2f}s")
    assert result.output == "hello from loopback"
    assert (result.provider, result.model) == ("claude-code", "claude-sonnet-4-5")
    assert (result.tokens_in, result.tokens_out) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert result.cost_usd is not None and result.cost_usd > 0
    (call,) = [r for r in vendor_api.model_calls() if r.path.startswith("/v1/messages")]
    assert call.headers["x-api-key"] == KEY
    assert "PROMPT-VIA-STDIN" in str(call.body["messages"])
    assert "You are terse." in str(call.body["system"])


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit"), (401, "auth_error"), (500, "provider_error")]
)
def test_claude_code_maps_api_errors_without_retrying(
    vendor_api: VendorAPI,
    cli_env: dict[str, str],
    key_env: str,
    tmp_path: Path,
    status: int,
    kind: str,
) -> None:
    vendor_api.fail_next(status, f"failure echoing {KEY}", times=5)
    error = failure(ClaudeCodeProvider(), claude_agent(vendor_api, cli_env, key_env), tmp_path)
    assert error.kind == kind
    assert KEY not in str(error)
    assert len(vendor_api.model_calls()) == 1  # the CLI's own retries are off


def codex_agent(api: VendorAPI, env: dict[str, str], key_env: str) -> AgentSpec:
    return AgentSpec(
        provider="codex", base_url=f"{api.url}/v1", api_key_env=key_env, model="gpt-5-mini",
        env=env, system_prompt="SYSTEM-PROMPT-MARK",
    )  # fmt: skip


def test_codex_answers_with_usage(
    vendor_api: VendorAPI, cli_env: dict[str, str], key_env: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = invoke(
        CodexProvider(), codex_agent(vendor_api, cli_env, key_env), tmp_path, prompt="CODEX-Q"
    )
    print(f"codex call latency: {time.monotonic() - started:.2f}s")
    assert result.output == "hello from loopback"
    assert (result.tokens_in, result.tokens_out) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert result.model == "gpt-5-mini"
    (call,) = [r for r in vendor_api.model_calls() if r.path == "/v1/responses"]
    assert call.headers["authorization"] == f"Bearer {KEY}"
    sent = str(call.body["input"])
    assert "CODEX-Q" in sent and "SYSTEM-PROMPT-MARK" in sent


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth_error"), (429, "rate_limit"), (503, "provider_unavailable")],
)
def test_codex_maps_api_errors(
    vendor_api: VendorAPI,
    cli_env: dict[str, str],
    key_env: str,
    tmp_path: Path,
    status: int,
    kind: str,
) -> None:
    vendor_api.fail_next(status, f"failure echoing {KEY}", times=5)
    error = failure(CodexProvider(), codex_agent(vendor_api, cli_env, key_env), tmp_path)
    assert error.kind == kind
    assert KEY not in str(error)


def gemini_agent(api: VendorAPI, env: dict[str, str], key_env: str) -> AgentSpec:
    return AgentSpec(
        provider="gemini-cli", base_url=api.url, api_key_env=key_env, env=env,
        model="gemini-2.5-flash",
    )  # fmt: skip


def test_gemini_cli_answers_with_usage(
    vendor_api: VendorAPI, cli_env: dict[str, str], key_env: str, tmp_path: Path
) -> None:
    """From a fresh HOME (no ~/.gemini/settings.json selecting an auth type, as a new user
    has it), the agent's key is enough: the provider selects API-key auth for the run."""
    assert not any(Path(cli_env["HOME"]).rglob("settings.json"))
    started = time.monotonic()
    result = invoke(
        GeminiCliProvider(), gemini_agent(vendor_api, cli_env, key_env), tmp_path,
        prompt="GEMINI-Q",
    )  # fmt: skip
    print(f"gemini-cli call latency: {time.monotonic() - started:.2f}s")
    assert result.output == "hello from loopback"
    assert (result.tokens_in, result.tokens_out) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert result.model == "gemini-2.5-flash"
    calls = [r for r in vendor_api.model_calls() if "enerateContent" in r.path]
    assert calls and all(r.headers["x-goog-api-key"] == KEY for r in calls)
    assert any("GEMINI-Q" in str(r.body) for r in calls)


@pytest.mark.parametrize(("status", "kind"), [(401, "auth_error"), (429, "rate_limit")])
def test_gemini_cli_maps_api_errors_without_retrying(
    vendor_api: VendorAPI,
    cli_env: dict[str, str],
    key_env: str,
    tmp_path: Path,
    status: int,
    kind: str,
) -> None:
    vendor_api.fail_next(status, f"failure echoing {KEY}", times=10)
    error = failure(GeminiCliProvider(), gemini_agent(vendor_api, cli_env, key_env), tmp_path)
    assert error.kind == kind
    assert KEY not in str(error)
    assert len([r for r in vendor_api.model_calls() if "enerateContent" in r.path]) == 1


def test_cancelling_a_cli_call_kills_its_process_group(
    vendor_api: VendorAPI, cli_env: dict[str, str], key_env: str, tmp_path: Path
) -> None:
    """A hung API (the server stalls) and a step timeout: the CLI and its children die."""
    vendor_api.delay_s = 30
    agent = claude_agent(vendor_api, cli_env, key_env)
    home = cli_env["HOME"]

    async def timed_out() -> None:
        async with asyncio.timeout(2.0):
            await ClaudeCodeProvider().invoke(make_call(agent, workdir=tmp_path))

    with pytest.raises(TimeoutError):
        asyncio.run(timed_out())
    assert [r for r in vendor_api.model_calls() if r.path.startswith("/v1/messages")]
    deadline = time.monotonic() + 3  # SIGKILL is delivered asynchronously
    while _processes_with_home(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with_home(home)


def _processes_with_home(home: str) -> list[int]:
    """Pids of live processes started with HOME=`home` (the CLI and anything it spawned)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if f"HOME={home}".encode() in environ.split(b"\0") and "State:\tZ" not in status:
            found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid()]


def test_missing_cli_is_unavailable_naming_the_install(tmp_path: Path) -> None:
    agent = AgentSpec(provider="claude-code", env={"PATH": str(tmp_path)})
    availability = ClaudeCodeProvider().availability(agent)
    assert not availability.available
    assert "@anthropic-ai/claude-code" in availability.reason
    for provider, package in ((CodexProvider(), "@openai/codex"),
                              (GeminiCliProvider(), "@google/gemini-cli")):  # fmt: skip
        assert package in provider.availability(agent).reason
