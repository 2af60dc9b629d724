"""`claude-code`: Anthropic's Claude Code CLI (`claude -p`) as a subprocess.

`claude -p --output-format json` reads the prompt on stdin and prints one JSON object:
`result` (the answer), `usage`, `total_cost_usd`, and, when the API failed, `is_error` with
`api_error_status`. The CLI's own retries are turned off (`CLAUDE_CODE_MAX_RETRIES=0`)
unless the user sets them: the engine's retry policy and the router's fallback decide what
happens after a failure, and a CLI sleeping through minutes of back-off would eat the step's
timeout. `baseUrl` and `apiKeyEnv` map to `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY`.
"""

from __future__ import annotations

import json
import os
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
from automatosx.errors import StepError

CLI_DEFAULTS = {"CLAUDE_CODE_MAX_RETRIES": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


class ClaudeCodeProvider(VendorCli):
    name = "claude-code"
    uses_breaker = True
    uses_io_loop = False
    program = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        agent = call.agent
        env = cli_environment(agent, CLI_DEFAULTS)
        if agent.base_url:
            env["ANTHROPIC_BASE_URL"] = agent.base_url
        if agent.api_key_env:
            env["ANTHROPIC_API_KEY"] = os.environ.get(agent.api_key_env, "")
        program = self.require_program(env)
        argv = [program, "-p", "--output-format", "json"]
        if agent.model:
            argv += ["--model", agent.model]
        if agent.system_prompt:
            argv += ["--append-system-prompt", agent.system_prompt]
        prompt = prompt_with_schema(call.prompt, call.output_schema)
        out = await run_cli(self.name, argv, env=env, cwd=call.workdir, stdin_text=prompt)
        report = _report(out.stdout)
        if report is None:
            detail = stderr_tail(out.stderr) or out.stdout.strip()[-600:]
            raise StepError(
                "provider_error", f"claude-code: exit code {out.returncode}: {detail}".strip()
            )
        if report.get("is_error") or out.returncode != 0:
            status = report.get("api_error_status")
            kind = kind_for_status(status) if isinstance(status, int) else "provider_error"
            raise StepError(kind, f"claude-code: {report.get('result') or 'failed'}")
        usage: dict[str, Any] = report["usage"] if isinstance(report.get("usage"), dict) else {}
        cost = report.get("total_cost_usd")
        return ProviderResult(
            output=read_output(str(report.get("result") or ""), call.output_schema),
            provider=self.name,
            model=_model(report) or agent.model,
            tokens_in=_input_tokens(usage),
            tokens_out=usage.get("output_tokens") if usage else None,
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        )


def _report(stdout: str) -> dict[str, Any] | None:
    """The result object: the last line of stdout that parses as one."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "result" in value:
            return value
    return None


def _model(report: dict[str, Any]) -> str | None:
    usage = report.get("modelUsage")
    if isinstance(usage, dict) and usage:
        name = str(next(iter(usage)))
        return name.split("[", 1)[0]  # "claude-opus-4-8[1m]": the 1M-context variant
    return None


def _input_tokens(usage: dict[str, Any]) -> int | None:
    """Fresh input plus cache reads and writes: everything the model read."""
    parts = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    values = [usage.get(p) for p in parts]
    if not isinstance(values[0], int):
        return None
    return sum(v for v in values if isinstance(v, int))


PROVIDER_CLASS = ClaudeCodeProvider  # what `providers.provider_table` instantiates for this name
