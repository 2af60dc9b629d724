"""`ax agent list | show` and `ax provider list | test`: who can answer a step, and how.

The registry is read as a run would read it (built-ins, then `.automatosx/agents/*.yaml` in
the working directory). Availability is checked live (tool on PATH, key set, package
installed), so `ax provider list` answers "why does my agent fail validation?" before a
run. `ax provider test NAME` makes one tiny real call and reports its latency, usage and
cost; it exits 1 when the call fails. Secret-looking `env` values are shown as `***`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from automatosx.cli.apps import agent_app, provider_app
from automatosx.cli.output import (
    OutputFormat,
    console,
    err_console,
    escape,
    human_duration,
    neutralise,
    print_json,
)
from automatosx.errors import NotFoundError
from automatosx.secrets import masked_env

if TYPE_CHECKING:
    from automatosx.agents.base import ProviderResult
    from automatosx.agents.registry import RegisteredAgent
    from automatosx.agents.router import Router
    from automatosx.definition.models import AgentSpec

FORMAT_OPTION = typer.Option(OutputFormat.table, "--format", help="Output format.")
TEST_PROMPT = "Reply with the single word: ok"
TEST_MAX_TOKENS = 16


def _router() -> Router:
    from automatosx.agents.registry import AgentRegistry
    from automatosx.agents.router import Router

    return Router(AgentRegistry.load(workdir=Path.cwd()))


def agent_document(router: Router, entry: RegisteredAgent, *, full: bool) -> dict[str, Any]:
    spec = entry.spec
    configured = spec.provider_order()
    resolved = router.provider_order(spec)
    document: dict[str, Any] = {
        "name": entry.name,
        "role": spec.role,
        "description": spec.description,
        "providers": list(configured),
        "resolvedProviders": resolved,
        "model": spec.model,
        "source": entry.source,
    }
    if full:
        fields = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        fields.pop("provider", None)
        fields.pop("providers", None)
        if "env" in fields:
            fields["env"] = masked_env(spec.env)
        document.update({k: v for k, v in fields.items() if k not in document})
        document["availability"] = _availability(router, spec, resolved)
    return document


def _availability(router: Router, spec: AgentSpec, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        provider = router.providers.get(name)
        if provider is None:
            rows.append({"provider": name, "available": False, "reason": "not in this build"})
            continue
        found = provider.availability(spec)
        rows.append({"provider": name, "available": found.available, "reason": found.reason})
    return rows


@agent_app.command("list")
def agent_list(output: OutputFormat = FORMAT_OPTION) -> None:
    """List the agents: built-in profiles, then .automatosx/agents/*.yaml."""
    router = _router()
    documents = [agent_document(router, entry, full=False) for entry in router.registry]
    _warn_broken(router)
    if output == OutputFormat.json:
        print_json(documents)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("NAME", "ROLE", "PROVIDERS", "MODEL", "SOURCE"):
        table.add_column(column)
    for doc in documents:
        table.add_row(
            escape(doc["name"]),
            escape(doc["role"] or "-"),
            escape(_providers_text(doc)),
            escape(doc["model"] or "-"),
            escape(doc["source"]),
        )
    console.print(table)


def _warn_broken(router: Router) -> None:
    """One `warning:` line on stderr per broken agent file: the others are still listed."""
    for broken in sorted(router.registry.broken.values(), key=lambda b: b.source):
        problem = " ".join(broken.problem.split())
        err_console.print(
            f"warning: {broken.source}: {problem} (agent {broken.name!r} is left out)",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip


def _providers_text(doc: dict[str, Any]) -> str:
    if doc["providers"]:
        return " > ".join(doc["providers"])
    resolved = doc["resolvedProviders"]
    return f"default: {resolved[0]}" if resolved else "none available"


@agent_app.command("show")
def agent_show(
    name: str = typer.Argument(..., help="Agent name.", show_default=False),
    output: OutputFormat = FORMAT_OPTION,
) -> None:
    """Show one agent as YAML: its fields, where it is defined, and whether each of its
    providers is available here (and why not)."""
    router = _router()
    document = agent_document(router, router.registry.entry(name), full=True)
    if output == OutputFormat.json:
        print_json(document)
        return
    from automatosx.definition.serialize import dump_yaml

    shown = {k: v for k, v in document.items() if v not in (None, {}, [])}
    shown["availability"] = document["availability"]
    # Through the console, which neutralises control characters YAML leaves as they are.
    console.print(dump_yaml(shown), end="", markup=False, highlight=False, soft_wrap=True)


@provider_app.command("list")
def provider_list(output: OutputFormat = FORMAT_OPTION) -> None:
    """List the providers, whether each is available here, and why (or why not)."""
    from automatosx.agents.router import DEFAULT_PROVIDER_ORDER
    from automatosx.definition.models import AgentSpec

    router = _router()
    documents: list[dict[str, Any]] = []
    for name, provider in router.providers.items():
        if name in ("command", "python"):
            reason = (
                "configured per agent (`command:` argv)"
                if name == "command"
                else ("configured per agent (`callable: module:function`)")
            )
            documents.append({"name": name, "available": True, "reason": reason,
                              "defaultOrder": None})  # fmt: skip
            continue
        found = provider.availability(AgentSpec())
        order = DEFAULT_PROVIDER_ORDER.index(name) + 1 if name in DEFAULT_PROVIDER_ORDER else None
        documents.append(
            {"name": name, "available": found.available, "reason": found.reason,
             "defaultOrder": order}
        )  # fmt: skip
    if output == OutputFormat.json:
        print_json(documents)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("PROVIDER", "AVAILABLE", "REASON"):
        table.add_column(column)
    for doc in documents:
        mark = "[green]yes[/green]" if doc["available"] else "[red]no[/red]"
        table.add_row(escape(doc["name"]), mark, escape(doc["reason"]))
    console.print(table)


@provider_app.command("test")
def provider_test(
    name: str = typer.Argument(..., help="Provider name.", show_default=False),
    agent: str | None = typer.Option(
        None, "--agent", help="Use this agent's settings (model, baseUrl, env...)."
    ),
    model: str | None = typer.Option(None, "--model", help="Model to call."),
    base_url: str | None = typer.Option(None, "--base-url", help="API base URL (HTTP providers)."),
    timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="Seconds to wait."),
    output: OutputFormat = FORMAT_OPTION,
) -> None:
    """Make one tiny real call to a provider and report latency, tokens and cost."""
    from automatosx.agents.base import ProviderCall
    from automatosx.definition.models import AgentSpec
    from automatosx.errors import StepError

    router = _router()
    if name not in router.providers:
        known = ", ".join(router.providers)
        raise NotFoundError(f"unknown provider {name!r} (known providers: {known})")
    base = router.registry.get(agent) if agent else AgentSpec()
    updates: dict[str, Any] = {"provider": name, "providers": None}
    if model:
        updates["model"] = model
    if base_url:
        updates["base_url"] = base_url
    if base.max_tokens is None:
        updates["max_tokens"] = TEST_MAX_TOKENS
    spec = base.model_copy(update=updates)
    availability = router.providers[name].availability(spec)
    if not availability.available:
        _report_failure(name, f"not available: {availability.reason}", output)
        raise typer.Exit(1)
    call = ProviderCall(
        execution_id="provider-test", step_key="test", attempt=1,
        agent_name=agent or f"{name}-test", agent=spec, prompt=TEST_PROMPT,
        timeout_s=timeout, workdir=Path.cwd(),
    )  # fmt: skip
    import asyncio  # here, not at the top: it costs every `ax` command ~60 ms to import

    started = time.monotonic()
    try:
        result = asyncio.run(_one_call(router, call, timeout))
    except StepError as exc:
        _report_failure(name, str(exc), output)
        raise typer.Exit(1) from None
    duration_ms = (time.monotonic() - started) * 1000
    _report_success(result, duration_ms, output)


async def _one_call(router: Router, call: Any, timeout: float) -> ProviderResult:
    import asyncio

    from automatosx.agents.providers.http_api import close_shared_client
    from automatosx.errors import StepError

    try:
        async with asyncio.timeout(timeout):
            return await router.run(call)
    except TimeoutError:
        raise StepError("timeout", f"no answer within {timeout:g}s") from None
    finally:
        await close_shared_client()


def _report_success(result: ProviderResult, duration_ms: float, output: OutputFormat) -> None:
    document = {
        "provider": result.provider, "ok": True, "output": result.output,
        "model": result.model, "tokensIn": result.tokens_in, "tokensOut": result.tokens_out,
        "costUsd": result.cost_usd, "durationMs": round(duration_ms), "error": None,
    }  # fmt: skip
    if output == OutputFormat.json:
        print_json(document)
        return
    tokens = f"{result.tokens_in or '?'} in / {result.tokens_out or '?'} out"
    cost = "-" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    console.print(
        f"[green]ok[/green] {escape(result.provider)} ({escape(result.model or 'default model')})"
        f" in {human_duration(duration_ms)}, tokens {tokens}, cost {cost}"
    )
    console.print(escape(str(result.output)))


def _report_failure(name: str, message: str, output: OutputFormat) -> None:
    if output == OutputFormat.json:
        print_json({"provider": name, "ok": False, "output": None, "error": message})
    line = neutralise(" ".join(f"{name}: {message}".split()))
    sys.stderr.write(f"error: {line}\n")
