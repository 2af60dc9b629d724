"""Callables given in code as agents (the Python API's `agents={name: callable}`).

Each callable becomes a `python` agent of the workflow for one run: its inline agent
definition gets `provider: python` and a `callable` reference, and the run's router uses a
`python` provider that answers that reference from memory, calling the function exactly as
the provider's contract says (`function(prompt, *, execution_id, step_key, attempt,
context)`, sync or async; `StepError` keeps its kind, any other exception is
`provider_error`).

The reference is the function's importable name (`package.module:function`) when it has
one, so the stored definition says what ran and a later `ax workflow resume` or `recover` in
another process imports the same function; a lambda, a closure or a function of `__main__`
gets `__ax_in_memory__:AGENT`, which only the process that was given it can call (another
process fails validation with a message saying so).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from automatosx.agents.base import Provider
from automatosx.agents.providers import provider_table
from automatosx.agents.providers.python import IN_MEMORY_MODULE, PythonProvider
from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.definition.models import AGENT_NAME_PATTERN, AgentSpec
from automatosx.errors import ValidationIssue, WorkflowValidationError

_REFERENCE = re.compile(r"^[\w.]+:[\w.]+$")  # what AgentSpec.callable accepts


class CallableAgents:
    """Agent name -> callable, for one run (or one resume)."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        issues = []
        for name, function in functions.items():
            if not isinstance(name, str) or not re.match(AGENT_NAME_PATTERN, name):
                issues.append(
                    ValidationIssue(
                        f"agents.{name}", "an agent name is 1-64 letters, digits, '.', '_' or '-'"
                    )
                )
            elif not callable(function):
                issues.append(
                    ValidationIssue(
                        f"agents.{name}",
                        f"expected a callable (sync or async), got {type(function).__name__}",
                    )
                )
        if issues:
            raise WorkflowValidationError(issues)
        self.functions = dict(functions)
        self.references: dict[str, str] = {}
        taken: dict[str, Callable[..., Any]] = {}
        for name, function in self.functions.items():
            ref = reference(name, function)
            while ref in taken and taken[ref] is not function:  # two agents, one written name
                ref += "_"
            taken[ref] = function
            self.references[name] = ref

    def __bool__(self) -> bool:
        return bool(self.functions)

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def agents(self, inline: Mapping[str, AgentSpec]) -> dict[str, AgentSpec]:
        """The workflow's inline agents with each given callable as a `python` agent (an
        inline agent of that name keeps its other fields: model, timeoutMs, role...)."""
        merged = dict(inline)
        for name, ref in self.references.items():
            base = inline.get(name) or AgentSpec(description="a callable given in code")
            merged[name] = base.model_copy(
                update={"provider": "python", "providers": None, "callable": ref}
            )
        return merged

    def providers(self) -> Mapping[str, Provider]:
        """The provider table with a `python` provider that knows these callables."""
        own = PythonProvider({self.references[n]: f for n, f in self.functions.items()})
        return _Overlay({"python": own}, provider_table())

    def router(self, registry: AgentRegistry, workdir: Path) -> Router:
        return Router(registry, self.providers(), workdir=workdir)


def reference(name: str, function: Callable[..., Any]) -> str:
    """`module:qualname` when the function can be imported by that name, else an in-memory
    reference naming the agent."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module != "__main__":
        written = f"{module}:{qualname}"
        if _REFERENCE.match(written):
            return written
    return f"{IN_MEMORY_MODULE}:{re.sub(r'[^A-Za-z0-9_.]', '_', name)}"


class _Overlay(Mapping[str, Provider]):
    """`own` first, then the shared (lazily imported) table."""

    def __init__(self, own: Mapping[str, Provider], rest: Mapping[str, Provider]) -> None:
        self._own = dict(own)
        self._rest = rest

    def __getitem__(self, name: str) -> Provider:
        if name in self._own:
            return self._own[name]
        return self._rest[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rest)

    def __len__(self) -> int:
        return len(self._rest)
