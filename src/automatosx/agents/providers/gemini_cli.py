"""`gemini-cli`: Google's Gemini CLI (`gemini -p`) as a subprocess.

The prompt goes on stdin (`-p ""` makes the run headless; the CLI appends `-p` to stdin),
`--output-format json` prints `{response, stats}` on stdout, or `{error: {message, code}}`
at the end of stderr when the API failed. The run trusts the working directory for this
session only (`--skip-trust`): the user chose to run the workflow there, and headless runs
in an untrusted folder are refused.

The CLI retries failed API calls up to ten times with long back-off, which would swallow a
step's timeout; the only switch is the `general.maxAttempts` setting, so unless the user
has system settings of their own, the run points `GEMINI_CLI_SYSTEM_SETTINGS_PATH` at a
file of ours that sets it to 1 (the CLI ignores settings files in world-writable folders,
hence a private folder under the user's cache).

When the agent gives a key (`apiKeyEnv`), that file also selects API-key auth
(`security.auth.selectedType: gemini-api-key`, the key 0.61 reads). Headless, the CLI takes
its auth type from the settings, else guesses it from the environment, and with
`GOOGLE_GEMINI_BASE_URL` set (`baseUrl`) it guesses "gateway", which it then refuses
("Invalid auth method selected"): a new user, with no settings of their own, could not run
the agent at all. System settings win over the user's, which is what an agent that names
its key asks for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
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

SYSTEM_SETTINGS: dict[str, Any] = {"general": {"maxAttempts": 1}}
API_KEY_AUTH: dict[str, Any] = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
VENDOR_SYSTEM_SETTINGS = Path("/etc/gemini-cli/settings.json")


class GeminiCliProvider(VendorCli):
    name = "gemini-cli"
    uses_breaker = True
    uses_io_loop = False
    program = "gemini"
    install_hint = "npm install -g @google/gemini-cli"

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        agent = call.agent
        env = cli_environment(agent)
        if agent.base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = agent.base_url
        if agent.api_key_env:
            env["GEMINI_API_KEY"] = os.environ.get(agent.api_key_env, "")
        if "GEMINI_CLI_SYSTEM_SETTINGS_PATH" not in env and not VENDOR_SYSTEM_SETTINGS.exists():
            env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = str(
                run_settings(api_key=bool(agent.api_key_env))
            )
        program = self.require_program(env)
        argv = [program, "-p", "", "--output-format", "json", "--skip-trust"]
        if agent.model:
            argv += ["--model", agent.model]
        prompt = prompt_with_schema(call.prompt, call.output_schema)
        if agent.system_prompt:
            prompt = f"{agent.system_prompt}\n\n{prompt}"
        out = await run_cli(self.name, argv, env=env, cwd=call.workdir, stdin_text=prompt)
        report = _last_json_object(out.stdout)
        if out.returncode != 0 or report is None or "response" not in report:
            error = (report or {}).get("error") or (_last_json_object(out.stderr) or {}).get(
                "error"
            )
            raise _failure(error, out.returncode, out.stderr)
        tokens_in, tokens_out, model = _usage(report.get("stats"))
        return ProviderResult(
            output=read_output(str(report.get("response") or ""), call.output_schema),
            provider=self.name,
            model=model or agent.model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )


def run_settings(*, api_key: bool) -> Path:
    """Our settings file for a run (single attempt; API-key auth when `api_key`), in a folder
    only the user can write; rewritten when its content is not ours (an older version)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "automatosx" / "gemini-cli"
    settings = {**SYSTEM_SETTINGS, **API_KEY_AUTH} if api_key else SYSTEM_SETTINGS
    path = folder / ("system-settings-api-key.json" if api_key else "system-settings.json")
    text = json.dumps(settings, sort_keys=True)
    try:
        current = path.read_text(encoding="utf-8")
    except OSError:
        current = None
    if current != text:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        temp.replace(path)
    return path


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ends `text` (the CLI prints logs and traces before it)."""
    end = text.rstrip()
    start = end.rfind("\n{")
    while True:
        candidate = end[start + 1 :] if start >= 0 else end
        try:
            value = json.loads(candidate)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        if start < 0:
            return None
        start = end.rfind("\n{", 0, start)


def _failure(error: Any, returncode: int, stderr: str) -> StepError:
    if not isinstance(error, dict):
        detail = stderr_tail(stderr) or "no output"
        return StepError("provider_error", f"gemini-cli: exit code {returncode}: {detail}")
    message = str(error.get("message", "failed"))
    try:  # the CLI sometimes nests the API's own JSON error in the message
        nested = json.loads(message)
        message = str(nested["error"]["message"])
    except (ValueError, KeyError, TypeError):
        pass
    code = error.get("code")
    kind = kind_for_status(code) if isinstance(code, int) else "provider_error"
    return StepError(kind, f"gemini-cli: {message}")


def _usage(stats: Any) -> tuple[int | None, int | None, str | None]:
    """(input tokens, output tokens, main model) summed over the models the run used."""
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict) or not models:
        return None, None, None
    tokens_in = tokens_out = 0
    main: str | None = None
    for name, entry in models.items():
        tokens = entry.get("tokens", {}) if isinstance(entry, dict) else {}
        tokens_in += int(tokens.get("prompt", tokens.get("input", 0)) or 0)
        tokens_out += int(tokens.get("candidates", 0) or 0) + int(tokens.get("thoughts", 0) or 0)
        roles = entry.get("roles", {}) if isinstance(entry, dict) else {}
        if main is None or "main" in roles:
            main = str(name)
    return tokens_in, tokens_out, main


PROVIDER_CLASS = GeminiCliProvider  # what `providers.provider_table` instantiates for this name
