"""Which steps the result cache answers, and the key of a request (SPEC section 8).

A step uses the cache when its `cache` says so, else when `config.cache` does; only agent
steps (an approval or a sub-workflow is never answered from a cache). `true` keeps an
entry until `ax cache prune` or `clear` removes it; `{ttlMs: N}` lets a hit happen only
within N ms of the call that produced the entry.

The key is the SHA-256 (hex) of one canonical JSON document (keys sorted, no spaces,
UTF-8) of everything that decides the answer, and of nothing that changes from run to run:

    {"agent": {"baseUrl", "callable", "command", "env", "maxTokens", "model", "modelPath",
               "providers", "systemPrompt", "temperature"},
     "outputSchema": <the step's outputSchema or null>,
     "prompt": <the rendered prompt>,
     "v": 1}

- `providers` is the resolved provider order: the agent's `providers`/`provider`, or, for
  an agent that names none, the default provider the router picked on this machine.
- `env` is the agent's `env` as written (a `${NAME}` reference stays a reference); the
  value of a secret name (`*_KEY`, `*_TOKEN`, ..., `AX_SECRET_VARS`) is left out, its name
  kept: a rotated API key must not empty the cache, and a secret never enters a hash.
- Left out on purpose: the step key (two steps, or two forEach items, asking the same
  thing share an answer), the execution ID, the attempt, times, the agent's name, role,
  description, timeout and `apiKeyEnv` (none of which changes the answer), and the
  context, which reaches a provider only through the rendered prompt.

`v` changes whenever what goes into the key does, so an old entry is never misread.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from automatosx.definition.models import AgentSpec, StepSpec, WorkflowConfig
from automatosx.secrets import declared_names, is_secret_name

if TYPE_CHECKING:
    from automatosx.store.records import CacheEntry

KEY_VERSION = 1
# use: read and write; off (`--no-cache`): neither; refresh (`--refresh-cache`): call the
# provider whatever the cache holds, and overwrite the entry.
CacheMode = Literal["use", "off", "refresh"]
SECRET_LEFT_OUT = "<secret>"


@dataclass(frozen=True)
class CachePolicy:
    """A cached step's rule: how long an entry it stores may answer (None: for ever)."""

    ttl_ms: int | None = None


_FOR_EVER = CachePolicy()


def cache_policy(step: StepSpec, config: WorkflowConfig) -> CachePolicy | None:
    """The step's cache rule, None when the cache never answers it."""
    setting = step.cache if step.cache is not None else config.cache
    if step.kind != "agent" or setting is False:
        return None
    if setting is True:
        return _FOR_EVER
    return CachePolicy(setting.ttl_ms)


@dataclass(frozen=True)
class CacheUse:
    """How the cache took part in a successful attempt: `hit`, the entry that answered it;
    otherwise the provider answered, and its output is stored under `key` (for
    `policy.ttl_ms`) in the transaction that completes the step."""

    key: str
    policy: CachePolicy
    hit: CacheEntry | None = None


def agent_settings(agent: AgentSpec, providers: Sequence[str]) -> dict[str, Any]:
    """The agent's part of the key (see the module docstring)."""
    declared = declared_names()
    env = {
        name: SECRET_LEFT_OUT if is_secret_name(name, declared) else value
        for name, value in agent.env.items()
    }
    return {
        "baseUrl": agent.base_url,
        "callable": agent.callable,
        "command": agent.command,
        "env": env,
        "maxTokens": agent.max_tokens,
        "model": agent.model,
        "modelPath": agent.model_path,
        "providers": list(providers),
        "systemPrompt": agent.system_prompt,
        "temperature": agent.temperature,
    }


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def cache_key(
    agent: AgentSpec,
    providers: Sequence[str],
    prompt: str,
    output_schema: dict[str, Any] | None,
) -> str:
    """The key of one request: SHA-256 of the canonical document of the module docstring."""
    return key_from_parts(
        canonical_json(agent_settings(agent, providers)), canonical_json(output_schema), prompt
    )


def key_from_parts(agent_json: str, schema_json: str, prompt: str) -> str:
    """`cache_key` from the canonical JSON of its two parts that stay the same for a whole
    run (the runner computes them once): the same bytes as dumping the whole document,
    whose keys are in sorted order here."""
    document = (
        f'{{"agent":{agent_json},"outputSchema":{schema_json},'
        f'"prompt":{json.dumps(prompt, ensure_ascii=False)},"v":{KEY_VERSION}}}'
    )
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
