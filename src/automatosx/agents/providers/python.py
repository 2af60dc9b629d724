"""The `python` provider: a function as an agent (`callable: "package.module:function"`).

The module is imported from the working directory or the installed environment, once, and
called as `function(prompt, *, execution_id, step_key, attempt, context)`. Async functions
run on the event loop; sync ones in a worker thread (`callable_threads`) so a slow one
cannot stall the engine.
A `StepError` keeps its kind; any other exception is `provider_error`.

A provider made with `functions` (the Python API's `agents={name: callable}`) answers those
references from memory before importing anything: see `agents.in_memory`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.callable_threads import CALLABLE_THREADS
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError

# The module of the references given to callables that cannot be imported by name (a
# lambda, a closure, a function of `__main__`): only the process that was given them has them.
IN_MEMORY_MODULE = "__ax_in_memory__"


class PythonProvider:
    name = "python"
    uses_breaker = False
    uses_io_loop = False

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self._resolved: dict[tuple[str, str], Callable[..., Any]] = {}
        self._functions = dict(functions or {})  # reference -> callable, given in code

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        if not agent.callable:
            return Availability(False, "no `callable` (package.module:function) configured")
        try:  # cached: cheap on every call
            self.resolve(agent.callable, str(workdir) if workdir else os.getcwd())
        except StepError as exc:
            return Availability(False, exc.message)
        return Availability(True, f"calls {agent.callable}")

    def resolve(self, target: str, workdir: str) -> Callable[..., Any]:
        given = self._functions.get(target)
        if given is not None:
            return given
        cached = self._resolved.get((target, workdir))
        if cached is not None:
            return cached
        module_name, _, attr_path = target.partition(":")
        if module_name == IN_MEMORY_MODULE:
            raise StepError(
                "provider_unavailable",
                "this agent's callable was given in code (run_workflow's agents=) and only "
                "the process that was given it can call it: resume the execution from Python, "
                "giving it again (Client.resume(id, agents={...}))",
            )
        if workdir not in sys.path:
            sys.path.insert(0, workdir)
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr_path.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # an import error in user code is a provider failure
            raise StepError(
                "provider_unavailable", f"cannot load {target}: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(obj):
            raise StepError("provider_unavailable", f"{target} is not callable")
        self._resolved[(target, workdir)] = obj
        return obj  # type: ignore[no-any-return]

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        if not call.agent.callable:
            raise StepError("provider_unavailable", f"agent {call.agent_name!r} has no callable")
        func = self.resolve(call.agent.callable, str(call.workdir))
        kwargs = {
            "execution_id": call.execution_id,
            "step_key": call.step_key,
            "attempt": call.attempt,
            "context": call.context,
        }
        try:
            if inspect.iscoroutinefunction(func):
                output = await func(call.prompt, **kwargs)
            else:
                output = await CALLABLE_THREADS.run(func, call.prompt, **kwargs)
                if inspect.isawaitable(output):
                    output = await output
        except StepError:
            raise
        except asyncio.CancelledError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # sys.exit() in user code ends the step, not the runner (which would leave the
            # execution orphaned mid-run); a real Ctrl-C reaches the runner as a signal.
            raise StepError("provider_error", f"{type(exc).__name__}: {exc}") from None
        if not isinstance(output, str):
            try:
                json.dumps(output, allow_nan=False)  # NaN/Infinity are not JSON
            except (TypeError, ValueError, RecursionError) as exc:
                raise StepError(
                    "invalid_output", f"{call.agent.callable} returned a non-JSON value: {exc}"
                ) from None
        return ProviderResult(output=output, provider=self.name, model=call.agent.model)


PROVIDER_CLASS = PythonProvider  # what `providers.provider_table` instantiates for this name
