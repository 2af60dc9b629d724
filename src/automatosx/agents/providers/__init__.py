"""Providers by name: the table the router looks providers up in.

The names are listed once, as `ProviderName` in the definition models (what a workflow file
may say); each lives in the module of the same name (`claude-code` in `claude_code.py`),
whose `PROVIDER_CLASS` is the implementation. A provider's module is imported the first
time its name is looked up, so a run whose agents all use
`python` or `command` never pays for importing an HTTP client (httpx costs ~50 ms of
start-up, a third of `ax workflow run`'s own).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache
from typing import get_args

from automatosx.agents.base import Provider
from automatosx.definition.models import ProviderName

PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)


def provider_module(name: str) -> str:
    """The module implementing provider `name`."""
    return f"{__name__}.{name.replace('-', '_')}"


class ProviderTable(Mapping[str, Provider]):
    """Name -> the shared provider instance, created on first lookup."""

    def __init__(self) -> None:
        self._made: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        provider = self._made.get(name)
        if provider is None:
            if name not in PROVIDER_NAMES:
                raise KeyError(name)
            provider = importlib.import_module(provider_module(name)).PROVIDER_CLASS()
            self._made[name] = provider
        return provider

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDER_NAMES)

    def __len__(self) -> int:
        return len(PROVIDER_NAMES)


@cache
def provider_table() -> ProviderTable:
    """One shared instance per provider name (providers keep caches, e.g. resolved callables)."""
    return ProviderTable()
