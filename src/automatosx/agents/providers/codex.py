"""`codex`: OpenAI's Codex CLI (`codex exec --json`) as a subprocess.

`codex exec --json -` reads the prompt on stdin and prints JSON lines: `item.completed`
events (the answer is the last `agent_message` item), then `turn.completed` with usage, or
`turn.failed` with an error message that carries the API's status. Codex has no
system-prompt flag, so the agent's system prompt leads the prompt. With `baseUrl`, the
agent gets its own model provider (Responses API at that URL, key from `apiKeyEnv`,
default `OPENAI_API_KEY`) with the CLI's retries off: retrying is the engine's decision.
"""

from __future__ import annotations

import json
import re
from typing import Any

from automatosx.agents.base import ProviderCall, ProviderResult
from automatosx.agents.providers.cli_process import (
    VendorCli,
    cli_environment,
    run_cli,
    stderr_tail,
)
from automatosx.agents.providers.http_status import kind_for_status
from automatosx.agents.providers.prompting import prompt_with_schema, read_output
from automatosx.errors import ErrorKind, StepError

MODEL_PROVIDER_ID = "automatosx"
_STATUS = re.compile(r"\b(?:status:?|status code)\s*(\d{3})\b", re.IGNORECASE)


class CodexProvider(VendorCli):
    name = "codex"
    uses_breaker = True
    uses_io_loop = False
    program = "codex"
    install_hint = "npm install -g @openai/codex"

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        agent = call.agent
        env = cli_environment(agent)
        program = self.require_program(env)
        argv = [program, "exec", "--json", "--skip-git-repo-check", "--ephemeral"]
        if agent.model:
            argv += ["--model", agent.model]
        if agent.base_url:
            argv += model_provider_options(agent.base_url, agent.api_key_env or "OPENAI_API_KEY")
        argv.append("-")  # the prompt comes on stdin
        prompt = prompt_with_schema(call.prompt, call.output_schema)
        if agent.system_prompt:
            prompt = f"{agent.system_prompt}\n\n{prompt}"
        out = await run_cli(self.name, argv, env=env, cwd=call.workdir, stdin_text=prompt)
        events = _json_lines(out.stdout)
        answer, usage, failure = _read_events(events)
        if failure is not None or out.returncode != 0:
            message = failure or stderr_tail(out.stderr) or f"exit code {out.returncode}"
            raise StepError(_kind_of(message), f"codex: {message}")
        if answer is None:
            raise StepError("provider_error", "codex: the run ended without an agent message")
        return ProviderResult(
            output=read_output(answer, call.output_schema),
            provider=self.name,
            model=agent.model,
            tokens_in=_int(usage, "input_tokens"),
            tokens_out=_int(usage, "output_tokens"),
        )


def model_provider_options(base_url: str, key_env: str) -> list[str]:
    """`-c` overrides that define a model provider at `base_url` and select it."""
    table = (
        f'{{name="{MODEL_PROVIDER_ID}", base_url={json.dumps(base_url)}, wire_api="responses", '
        f"env_key={json.dumps(key_env)}, request_max_retries=0, stream_max_retries=0}}"
    )
    return [
        "-c", f"model_provider={MODEL_PROVIDER_ID}",
        "-c", f"model_providers.{MODEL_PROVIDER_ID}={table}",
    ]  # fmt: skip


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    events = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def _read_events(
    events: list[dict[str, Any]],
) -> tuple[str | None, dict[str, Any], str | None]:
    """(last agent message, turn usage, failure message)."""
    answer: str | None = None
    usage: dict[str, Any] = {}
    failure: str | None = None
    for event in events:
        kind = event.get("type")
        item: dict[str, Any] = event["item"] if isinstance(event.get("item"), dict) else {}
        if kind == "item.completed" and item.get("type") == "agent_message":
            answer = str(item.get("text", ""))
        elif kind == "turn.completed" and isinstance(event.get("usage"), dict):
            usage = event["usage"]
        elif kind == "turn.failed":
            error = event.get("error")
            failure = str(error.get("message")) if isinstance(error, dict) else str(error)
        elif kind == "error" and failure is None:
            failure = str(event.get("message"))
    return answer, usage, failure


def _kind_of(message: str) -> ErrorKind:
    if match := _STATUS.search(message):
        return kind_for_status(int(match.group(1)))
    lowered = message.lower()
    if "unauthorized" in lowered or "api key" in lowered:
        return "auth_error"
    if "high demand" in lowered or "overloaded" in lowered or "connection" in lowered:
        return "provider_unavailable"
    return "provider_error"


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) else None


PROVIDER_CLASS = CodexProvider  # what `providers.provider_table` instantiates for this name
