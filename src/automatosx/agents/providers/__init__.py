"""Providers by name: the table the router looks providers up in.

Each provider lives in its own module; add new ones to `provider_table`.
"""

from __future__ import annotations

from functools import cache

from automatosx.agents.base import Provider


@cache
def provider_table() -> dict[str, Provider]:
    """One shared instance per provider name (providers keep caches, e.g. resolved callables)."""
    from automatosx.agents.providers.command import CommandProvider
    from automatosx.agents.providers.python import PythonProvider

    providers: list[Provider] = [CommandProvider(), PythonProvider()]
    return {provider.name: provider for provider in providers}
