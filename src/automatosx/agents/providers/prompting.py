"""How the AI providers phrase a step for a model and read its answer back.

Every AI provider (CLI, HTTP or local) gets the same treatment so a workflow behaves the
same whichever provider serves it: the step's `outputSchema`, when there is one, is stated
in the prompt (and also enforced by the provider where the API can: response formats,
grammars), and the answer is parsed as JSON, tolerating the Markdown code fence that
chat models like to add. Whether the value meets the schema is the engine's check.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automatosx.agents.base import ProviderCall

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)


def prompt_with_schema(prompt: str, output_schema: dict[str, Any] | None) -> str:
    if not output_schema:
        return prompt
    schema = json.dumps(output_schema, separators=(",", ":"), sort_keys=True)
    return (
        f"{prompt}\n\nRespond with only a JSON value, no prose and no code fence, "
        f"that conforms to this JSON Schema: {schema}"
    )


def chat_messages(call: ProviderCall) -> list[dict[str, str]]:
    """The chat-completion messages of a step: the agent's system prompt, if any, then the
    prompt with its schema (the OpenAI-style APIs and the local model take the same)."""
    messages: list[dict[str, str]] = []
    if call.agent.system_prompt:
        messages.append({"role": "system", "content": call.agent.system_prompt})
    messages.append(
        {"role": "user", "content": prompt_with_schema(call.prompt, call.output_schema)}
    )
    return messages


def read_output(text: str, output_schema: dict[str, Any] | None) -> Any:
    """The step output: parsed JSON when the step expects structure, else the text."""
    if not output_schema:
        return text
    match = _FENCE.match(text)
    candidate = match.group("body") if match else text
    try:
        return parse_json(candidate)
    except ValueError:
        return text  # left to the engine's schema check, which reports invalid_output


def parse_json(text: str) -> Any:
    """Strict JSON: `NaN`/`Infinity` (which Python's json writes and models imitate) and
    nesting too deep to parse raise ValueError, like any other text that is not JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
