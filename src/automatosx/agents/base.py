"""The `Provider` interface: one real integration per provider, all behind the same call.

A provider turns a rendered prompt into an output. It reports failures as `StepError` with a
contract kind, so the engine's retry filter and the router's fallback can act on the kind.
It never touches the store. Cancellation (timeout, cancel, pause-with-cancel) arrives as
`asyncio.CancelledError` inside `invoke`; a provider must then stop everything it started
(kill the whole process group, close the HTTP request) before re-raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automatosx.definition.models import AgentSpec


@dataclass(frozen=True)
class ProviderCall:
    """Everything a provider may need for one step attempt."""

    execution_id: str
    step_key: str
    attempt: int  # 1-based
    agent_name: str
    agent: AgentSpec
    prompt: str
    context: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    output_schema: dict[str, Any] | None = None
    workdir: Path = field(default_factory=Path.cwd)

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts and recoveries, so an agent can detect a re-run."""
        return f"{self.execution_id}:{self.step_key}"


@dataclass(frozen=True)
class ProviderResult:
    """A successful attempt: the output (text, or a JSON value) and what it cost."""

    output: Any
    provider: str
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # why not, or what it found ("claude on PATH", "OPENAI_API_KEY set")


class Provider(Protocol):
    name: str
    # Whether a circuit breaker guards it (a service that can be down; not the user's own
    # programs, which fail for their own reasons).
    uses_breaker: bool
    # Whether its calls run on the I/O loop thread (HTTP clients do enough Python work per
    # call to stall the engine's loop when hundreds run at once; see io_loop).
    uses_io_loop: bool

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        """Whether this provider can serve `agent` for attempts run in `workdir` (default:
        the current directory), and why (not)."""
        ...

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        """Run one attempt. Raises StepError on failure; cleans up on cancellation."""
        ...


class StepRunner(Protocol):
    """What the engine calls to run a step: the router (agent -> providers, fallback)."""

    async def run(self, call: ProviderCall) -> ProviderResult: ...
