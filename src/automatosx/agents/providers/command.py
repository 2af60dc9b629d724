"""The `command` provider: any local program as an agent (SPEC section 4).

The argv runs without a shell, the rendered prompt arrives on stdin, and the environment
names the attempt (`AX_EXECUTION_ID`, `AX_STEP_KEY`, `AX_ATTEMPT`, `AX_AGENT`,
`AX_IDEMPOTENCY_KEY`) so an agent can detect a re-run after recovery. Exit 0 means stdout is
the output (a JSON value becomes structured output); anything else is a failure carrying the
end of stderr. How the program runs (its own process group, killed with the attempt; output
masked) is `cli_process.run_cli`, shared with the vendor CLIs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.cli_process import cli_environment, run_cli
from automatosx.agents.providers.prompting import parse_json
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError

STDERR_TAIL_CHARS = 2000


class CommandProvider:
    name = "command"
    uses_breaker = False
    uses_io_loop = False

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        if not agent.command:
            return Availability(False, "no `command` (argv) configured")
        program = agent.command[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            found = (Path(workdir or Path.cwd()) / program).is_file()
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
            **cli_environment(call.agent),
            "AX_EXECUTION_ID": call.execution_id,
            "AX_STEP_KEY": call.step_key,
            "AX_ATTEMPT": str(call.attempt),
            "AX_AGENT": call.agent_name,
            "AX_IDEMPOTENCY_KEY": call.idempotency_key,
        }
        out = await run_cli(self.name, argv, env=env, cwd=call.workdir, stdin_text=call.prompt)
        if out.returncode != 0:
            tail = out.stderr.strip()[-STDERR_TAIL_CHARS:]
            message = f"{argv[0]} exited with code {out.returncode}"
            raise StepError("provider_error", f"{message}: {tail}" if tail else message)
        return ProviderResult(
            output=parse_output(out.stdout), provider=self.name, model=call.agent.model
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


PROVIDER_CLASS = CommandProvider  # what `providers.provider_table` instantiates for this name
