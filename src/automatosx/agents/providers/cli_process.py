"""Running a local program for one step attempt: the `command` provider and the vendor CLIs
(claude, gemini, codex).

One discipline for all of them: argv without a shell, the attempt in its own session so a
timeout or cancel kills the program and every helper it spawned, the prompt on stdin when
the program reads it there (argv is visible to other users in `ps` and is limited in
length), the agent's `env` resolved (`${NAME}` taken from the runner's environment), and
what comes back masked with the secrets of the environment the program saw. What differs
between providers is only how each reads the output, which lives in each one's module.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from automatosx.agents.agent_env import resolve_agent_env
from automatosx.agents.base import Availability
from automatosx.agents.providers.process_group import kill_group, signal_group
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError
from automatosx.secrets import redact, secret_values


class VendorCli:
    """What the vendor CLI providers share: their program found on the PATH the attempt
    will see (the agent's `env` may extend it), and how to install it when it is not."""

    name: str
    program: str
    install_hint: str

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        path = find_program(self.program, cli_environment(agent, strict=False))
        if path is None:
            return Availability(False, f"`{self.program}` not on PATH ({self.install_hint})")
        return Availability(True, f"{self.program} at {path}")

    def require_program(self, env: Mapping[str, str]) -> str:
        path = find_program(self.program, env)
        if path is None:
            raise StepError("provider_unavailable", f"{self.name}: `{self.program}` not on PATH")
        return path


@dataclass(frozen=True)
class CliOutput:
    returncode: int
    stdout: str
    stderr: str


def cli_environment(
    agent: AgentSpec, defaults: Mapping[str, str] = {}, *, strict: bool = True
) -> dict[str, str]:
    """The process environment plus the agent's resolved `env`; `defaults` fill only what
    neither sets (so a user can still override, say, a vendor's retry count). `strict`:
    an unresolvable `${NAME}` fails the attempt (`provider_unavailable`) instead of being
    left out (availability checks only look for the program)."""
    env = {**os.environ, **resolve_agent_env(agent.env, strict=strict)}
    for name, value in defaults.items():
        env.setdefault(name, value)
    return env


def find_program(program: str, env: Mapping[str, str]) -> str | None:
    """The CLI's path, searching the PATH the CLI will run with."""
    return shutil.which(program, path=env.get("PATH"))


async def run_cli(
    provider: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin_text: str | None,
) -> CliOutput:
    """Run to completion; kill the process group if the attempt is cancelled."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise StepError(
            "provider_unavailable", f"{provider}: cannot start {argv[0]}: {exc}"
        ) from None
    try:
        stdout, stderr = await proc.communicate(
            stdin_text.encode() if stdin_text is not None else None
        )
    except BaseException:
        await kill_group(proc)
        raise
    signal_group(proc.pid, signal.SIGKILL)  # helpers the CLI left behind die with the step
    secrets = secret_values(env)
    return CliOutput(
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=redact(stdout.decode(errors="replace"), secrets),
        stderr=redact(stderr.decode(errors="replace"), secrets),
    )


def stderr_tail(text: str, limit: int = 600) -> str:
    """The end of stderr without stack-trace frames: the part that says what went wrong."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("    at ")]
    return "\n".join(lines)[-limit:]
