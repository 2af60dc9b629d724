"""Providers by name: the table the router looks providers up in.

Each provider lives in its own module; add new ones to `PROVIDER_CLASSES`. A provider's
module is imported the first time its name is looked up, so a run whose agents all use
`python` or `command` never pays for importing an HTTP client (httpx costs ~50 ms of
start-up, a third of `ax workflow run`'s own).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache

from automatosx.agents.base import Provider

PROVIDER_CLASSES: dict[str, tuple[str, str]] = {
    "claude-code": ("automatosx.agents.providers.claude_code", "ClaudeCodeProvider"),
    "gemini-cli": ("automatosx.agents.providers.gemini_cli", "GeminiCliProvider"),
    "codex": ("automatosx.agents.providers.codex", "CodexProvider"),
    "openai": ("automatosx.agents.providers.openai", "OpenAIProvider"),
    "anthropic": ("automatosx.agents.providers.anthropic", "AnthropicProvider"),
    "local": ("automatosx.agents.providers.local", "LocalProvider"),
    "command": ("automatosx.agents.providers.command", "CommandProvider"),
    "python": ("automatosx.agents.providers.python", "PythonProvider"),
}


class ProviderTable(Mapping[str, Provider]):
    """Name -> the shared provider instance, created on first lookup."""

    def __init__(self) -> None:
        self._made: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        provider = self._made.get(name)
        if provider is None:
            module_name, class_name = PROVIDER_CLASSES[name]  # KeyError: not a provider
            provider = getattr(importlib.import_module(module_name), class_name)()
            self._made[name] = provider
        return provider

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDER_CLASSES)

    def __len__(self) -> int:
        return len(PROVIDER_CLASSES)


@cache
def provider_table() -> ProviderTable:
    """One shared instance per provider name (providers keep caches, e.g. resolved callables)."""
    return ProviderTable()
