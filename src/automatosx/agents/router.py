"""The router: turns "agent X runs this prompt" into a provider call, with fallback.

It implements `StepRunner` for the engine. An agent lists its providers in order (an agent
with none uses the first available of `DEFAULT_PROVIDER_ORDER`); the router skips those
that are unavailable (tool not installed, key not set) or whose circuit breaker is open,
invokes the next, and moves on when one fails in a way another provider can fix: it is
unavailable, rate-limited, refuses the credentials, or has just failed often enough to
open its breaker. Other failures (a provider error under the threshold, a timeout) go back
to the engine, whose retry policy decides. `check_agents` runs before anything executes so
a workflow whose agent has no usable provider fails validation instead of mid-run.

The router also completes the usage record: a result without a cost gets one from the
price table when its model is priced.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from automatosx.agents.base import Provider, ProviderCall, ProviderResult
from automatosx.agents.circuit_breaker import PROCESS_BREAKERS, BreakerBoard
from automatosx.agents.io_loop import run_on_io_loop
from automatosx.agents.pricing import PriceTable
from automatosx.agents.registry import AgentRegistry
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError, ValidationIssue

FALLBACK_KINDS = frozenset({"provider_unavailable", "rate_limit", "auth_error"})
BREAKER_FAILURE_KINDS = frozenset(
    {"provider_unavailable", "rate_limit", "auth_error", "provider_error", "timeout"}
)
DEFAULT_PROVIDER_ORDER = ("claude-code", "gemini-cli", "codex", "openai", "anthropic", "local")


class Router:
    def __init__(
        self,
        registry: AgentRegistry,
        providers: Mapping[str, Provider] | None = None,
        *,
        breakers: BreakerBoard | None = None,
        workdir: Path | None = None,
    ) -> None:
        if providers is None:
            from automatosx.agents.providers import provider_table

            providers = provider_table()
        self.registry = registry
        # Where the execution's attempts run: relative programs, modules and model files
        # are found there, whatever directory the runner was started from.
        self.workdir = workdir or Path.cwd()
        # Not copied: the default table imports a provider's module on first lookup.
        self.providers = providers
        self.breakers = breakers if breakers is not None else PROCESS_BREAKERS
        self._prices: dict[Path, PriceTable] = {}

    def provider_order(self, spec: AgentSpec) -> list[str]:
        """The agent's providers, or the first available default when it names none."""
        configured = spec.provider_order()
        if configured:
            return list(configured)
        for name in DEFAULT_PROVIDER_ORDER:
            provider = self.providers.get(name)
            if provider is not None and provider.availability(spec, self.workdir).available:
                return [name]
        return []

    def default_provider_reasons(self, spec: AgentSpec) -> list[str]:
        """Why each default provider cannot serve `spec`: what to install or set."""
        reasons = []
        for name in DEFAULT_PROVIDER_ORDER:
            provider = self.providers.get(name)
            if provider is None:
                reasons.append(f"{name}: not available in this build")
            else:
                reasons.append(f"{name}: {provider.availability(spec, self.workdir).reason}")
        return reasons

    def usable_providers(self, agent_name: str) -> tuple[list[str], list[str]]:
        """(usable provider names in order, reasons the others are not usable)."""
        spec = self.registry.get(agent_name)
        usable: list[str] = []
        reasons: list[str] = []
        for name in self.provider_order(spec):
            provider = self.providers.get(name)
            if provider is None:
                reasons.append(f"provider {name!r} is not available in this build")
                continue
            availability = provider.availability(spec, self.workdir)
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
        broken = self.registry.broken.get(agent)
        if broken is not None:
            return f"agent {agent!r} cannot be used: {broken.source}: {broken.problem}"
        if agent not in self.registry:
            return f"unknown agent {agent!r} (known agents: {', '.join(self.registry.names())})"
        spec = self.registry.get(agent)
        if not spec.provider_order() and not self.provider_order(spec):
            missing = "; ".join(self.default_provider_reasons(spec))
            return (
                f"agent {agent!r} has no provider configured and no default provider is "
                f"available; install or configure one ({missing}), "
                f"or give the agent `provider:` in .automatosx/agents/{agent}.yaml or the "
                f"workflow's `agents:`"
            )
        usable, reasons = self.usable_providers(agent)
        if not usable:
            return f"agent {agent!r} has no usable provider ({'; '.join(reasons)})"
        return None

    async def run(self, call: ProviderCall) -> ProviderResult:
        order = self.provider_order(call.agent)
        if not order:
            reasons = "; ".join(self.default_provider_reasons(call.agent))
            raise StepError(
                "provider_unavailable", f"agent {call.agent_name!r} has no provider ({reasons})"
            )
        skipped: list[str] = []
        failures: list[tuple[str, StepError]] = []
        for index, name in enumerate(order):
            is_last = index == len(order) - 1
            provider = self.providers.get(name)
            if provider is None:
                skipped.append(f"{name}: not available in this build")
                continue
            availability = provider.availability(call.agent, call.workdir)
            if not availability.available:
                skipped.append(f"{name}: {availability.reason}")
                continue
            breaker = (
                self.breakers.breaker(breaker_key(name, call.agent))
                if provider.uses_breaker
                else None
            )
            if breaker is not None and not breaker.try_acquire():
                skipped.append(
                    f"{name}: circuit open after {breaker.consecutive_failures} consecutive "
                    f"failures (next trial in {breaker.retry_in_s():.0f}s)"
                )
                continue
            try:
                if provider.uses_io_loop:
                    result = await run_on_io_loop(provider.invoke(call))
                else:
                    result = await provider.invoke(call)
            except StepError as exc:
                if breaker is not None:
                    if exc.kind in BREAKER_FAILURE_KINDS:
                        breaker.record_failure()
                    else:
                        breaker.release()
                repeated = breaker is not None and breaker.state == "open"
                if is_last or not (exc.kind in FALLBACK_KINDS or repeated):
                    if not skipped and not failures:
                        raise
                    failures.append((name, exc))
                    break
                failures.append((name, exc))
                continue
            except asyncio.CancelledError:
                if breaker is not None:
                    breaker.release()
                raise
            except Exception:
                if breaker is not None:
                    breaker.record_failure()
                raise
            if breaker is not None:
                breaker.record_success()
            return self._with_cost(result, call.workdir)
        raise _combined_error(call.agent_name, skipped, failures)

    def _with_cost(self, result: ProviderResult, workdir: Path) -> ProviderResult:
        if result.cost_usd is not None:
            return result
        prices = self._prices.get(workdir)
        if prices is None:
            prices = self._prices[workdir] = PriceTable.for_workdir(workdir)
        cost = prices.cost(result.model, result.tokens_in, result.tokens_out)
        return result if cost is None else dataclasses.replace(result, cost_usd=cost)


def breaker_key(provider: str, spec: AgentSpec) -> str:
    """One breaker per provider and endpoint (or model file, for `local`)."""
    target = spec.base_url or spec.model_path or ""
    return f"{provider}|{target}" if target else provider


def _combined_error(
    agent: str, skipped: list[str], failures: list[tuple[str, StepError]]
) -> StepError:
    """One error for an agent none of whose providers served the call. Its kind is the
    last failure's (or `provider_unavailable` when nothing could even be tried)."""
    parts = [*skipped, *(f"{name}: {error}" for name, error in failures)]
    kind = failures[-1][1].kind if failures else "provider_unavailable"
    hints = [e.retry_after_s for _, e in failures if e.retry_after_s is not None]
    return StepError(
        kind,
        f"no provider of agent {agent!r} succeeded ({'; '.join(parts)})",
        retry_after_s=min(hints) if hints else None,
    )
