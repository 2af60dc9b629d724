"""The `command` provider: any local program as an agent (SPEC section 4).

The argv runs without a shell, the rendered prompt arrives on stdin, and the environment
names the attempt (`AX_EXECUTION_ID`, `AX_STEP_KEY`, `AX_ATTEMPT`, `AX_AGENT`,
`AX_IDEMPOTENCY_KEY`) so an agent can detect a re-run after recovery. Exit 0 means stdout is
the output (a JSON value becomes structured output); anything else is a failure carrying the
end of stderr. The attempt owns its process group: when it ends, for any reason, the group
is killed, so no grandchild outlives its step.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.process_group import kill_group, signal_group
from automatosx.agents.providers.prompting import parse_json
from automatosx.agents.secrets import redact, secret_values
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError

STDERR_TAIL_CHARS = 2000


class CommandProvider:
    name = "command"

    def availability(self, agent: AgentSpec) -> Availability:
        if not agent.command:
            return Availability(False, "no `command` (argv) configured")
        program = agent.command[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            found = Path(program).is_file()
        else:
            found = shutil.which(program) is not None
        if not found:
            return Availability(False, f"program {program!r} not found")
        return Availability(True, f"runs {program}")

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        argv = call.agent.command
        if not argv:
            raise StepError("provider_unavailable", f"agent {call.agent_name!r} has no command")
        env = {
            **os.environ,
            **call.agent.env,
            "AX_EXECUTION_ID": call.execution_id,
            "AX_STEP_KEY": call.step_key,
            "AX_ATTEMPT": str(call.attempt),
            "AX_AGENT": call.agent_name,
            "AX_IDEMPOTENCY_KEY": call.idempotency_key,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=call.workdir,
                start_new_session=True,
            )
        except OSError as exc:
            raise StepError("provider_unavailable", f"cannot start {argv[0]!r}: {exc}") from None
        try:
            stdout, stderr = await proc.communicate(call.prompt.encode())
        except BaseException:
            await kill_group(proc)
            raise
        # Whatever the step left running in its group dies with the step.
        signal_group(proc.pid, signal.SIGKILL)
        # The agent's own `env` may hold secrets the store does not know about (it masks the
        # runner's environment): mask them here, at the source, like the vendor CLIs do.
        secrets = secret_values(env)
        if proc.returncode != 0:
            tail = redact(stderr.decode(errors="replace"), secrets).strip()[-STDERR_TAIL_CHARS:]
            message = f"{argv[0]} exited with code {proc.returncode}"
            raise StepError("provider_error", f"{message}: {tail}" if tail else message)
        return ProviderResult(
            output=parse_output(redact(stdout.decode(errors="replace"), secrets)),
            provider=self.name,
            model=call.agent.model,
        )


def parse_output(text: str) -> Any:
    """A JSON value is structured output; anything else is text without its final newline.

    `NaN`/`Infinity` (which Python's json writes) are not JSON, and neither PostgreSQL nor
    other readers accept them: such output stays text, as does nesting too deep to parse."""
    stripped = text.strip()
    if stripped and stripped[0] in '{["-0123456789tfn':
        try:
            return parse_json(stripped)
        except ValueError:
            pass
    return text.removesuffix("\n").removesuffix("\r")
