"""Providers by name: the table the router looks providers up in.

Each provider lives in its own module; add new ones to `provider_table`.
"""

from __future__ import annotations

from functools import cache

from automatosx.agents.base import Provider


@cache
def provider_table() -> dict[str, Provider]:
    """One shared instance per provider name (providers keep caches, e.g. resolved callables)."""
    from automatosx.agents.providers.anthropic import AnthropicProvider
    from automatosx.agents.providers.claude_code import ClaudeCodeProvider
    from automatosx.agents.providers.codex import CodexProvider
    from automatosx.agents.providers.command import CommandProvider
    from automatosx.agents.providers.gemini_cli import GeminiCliProvider
    from automatosx.agents.providers.local import LocalProvider
    from automatosx.agents.providers.openai import OpenAIProvider
    from automatosx.agents.providers.python import PythonProvider

    providers: list[Provider] = [
        ClaudeCodeProvider(),
        GeminiCliProvider(),
        CodexProvider(),
        OpenAIProvider(),
        AnthropicProvider(),
        LocalProvider(),
        CommandProvider(),
        PythonProvider(),
    ]
    return {provider.name: provider for provider in providers}
