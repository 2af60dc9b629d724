"""The router: turns "agent X runs this prompt" into a provider call, with fallback.

It implements `StepRunner` for the engine. An agent lists its providers in order; the router
invokes the first, and moves on to the next only when one is unavailable or rate-limited
(the failures another provider can fix). `check_agents` runs before anything executes so a
workflow whose agent has no usable provider fails validation instead of mid-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from automatosx.agents.base import Provider, ProviderCall, ProviderResult
from automatosx.agents.registry import AgentRegistry
from automatosx.errors import StepError, ValidationIssue

FALLBACK_KINDS = frozenset({"provider_unavailable", "rate_limit"})


class Router:
    def __init__(self, registry: AgentRegistry, providers: Mapping[str, Provider] | None = None):
        if providers is None:
            from automatosx.agents.providers import provider_table

            providers = provider_table()
        self.registry = registry
        self.providers = dict(providers)

    def usable_providers(self, agent_name: str) -> tuple[list[str], list[str]]:
        """(usable provider names in order, reasons the others are not usable)."""
        spec = self.registry.get(agent_name)
        usable: list[str] = []
        reasons: list[str] = []
        for name in spec.provider_order():
            provider = self.providers.get(name)
            if provider is None:
                reasons.append(f"provider {name!r} is not available in this build")
                continue
            availability = provider.availability(spec)
            if availability.available:
                usable.append(name)
            else:
                reasons.append(f"{name}: {availability.reason}")
        return usable, reasons

    def check_agents(self, uses: Iterable[tuple[str, str]]) -> list[ValidationIssue]:
        """Issues for each (field path, agent name) whose agent is unknown or unserved."""
        issues: list[ValidationIssue] = []
        verdicts: dict[str, str | None] = {}
        for path, agent in uses:
            if agent not in verdicts:
                verdicts[agent] = self._agent_problem(agent)
            problem = verdicts[agent]
            if problem:
                issues.append(ValidationIssue(path, problem))
        return issues

    def _agent_problem(self, agent: str) -> str | None:
        if agent not in self.registry:
            return f"unknown agent {agent!r} (known agents: {', '.join(self.registry.names())})"
        if not self.registry.get(agent).provider_order():
            return (
                f"agent {agent!r} has no provider: give it `provider:` in "
                f".automatosx/agents/{agent}.yaml or in the workflow's `agents:`"
            )
        usable, reasons = self.usable_providers(agent)
        if not usable:
            return f"agent {agent!r} has no usable provider ({'; '.join(reasons)})"
        return None

    async def run(self, call: ProviderCall) -> ProviderResult:
        order = call.agent.provider_order()
        if not order:
            raise StepError("provider_unavailable", f"agent {call.agent_name!r} has no provider")
        last: StepError | None = None
        for index, name in enumerate(order):
            provider = self.providers.get(name)
            if provider is None:
                last = StepError("provider_unavailable", f"provider {name!r} is not available")
                continue
            try:
                return await provider.invoke(call)
            except StepError as exc:
                if exc.kind not in FALLBACK_KINDS or index == len(order) - 1:
                    raise
                last = exc
        assert last is not None
        raise last
