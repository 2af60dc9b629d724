"""Which values are secrets, and masking them: the one rule every room uses (SPEC section 6).

A secret is the value of an environment variable whose name ends in `_KEY`, `_TOKEN`,
`_SECRET` or `_PASSWORD` (any case), or is listed in `AX_SECRET_VARS` (comma-separated). The
project's own attempt variables (`AX_STEP_KEY`, `AX_IDEMPOTENCY_KEY`, ...) are never secrets:
their names end in `_KEY` by accident, and masking them turned every occurrence of a step's
key in its own output into `***`. Values shorter than four characters are ignored: masking
"1" or "on" would shred ordinary data.

Providers mask what they hand back (their agent's `env` may hold secrets the runner's
environment does not), the store masks everything it writes, the CLI masks what it shows:
all through this module, so they cannot disagree. It sits at the bottom of the package and
imports nothing of ours.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
SECRET_VARS_ENV = "AX_SECRET_VARS"
MASK = "***"
MIN_SECRET_LENGTH = 4
# What the runner sets for each attempt (SPEC section 4): identifiers, never credentials.
PROJECT_VARIABLES = frozenset(
    {"AX_EXECUTION_ID", "AX_STEP_KEY", "AX_ATTEMPT", "AX_AGENT", "AX_IDEMPOTENCY_KEY"}
)


def declared_names(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The names `AX_SECRET_VARS` declares secret."""
    env = os.environ if environ is None else environ
    return frozenset(n.strip() for n in env.get(SECRET_VARS_ENV, "").split(",") if n.strip())


def is_secret_name(name: str, declared: Iterable[str] = ()) -> bool:
    """Whether a variable of this name holds a secret (by its suffix, or declared)."""
    if name in PROJECT_VARIABLES:
        return False
    return name.upper().endswith(SECRET_SUFFIXES) or name in declared


def secret_values(
    environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> tuple[str, ...]:
    """The secret values in `environ` (default: the process environment) plus `extra`,
    longest first (so a secret containing another is masked whole)."""
    env = os.environ if environ is None else environ
    declared = declared_names(env)
    values = {value for name, value in env.items() if is_secret_name(name, declared)}
    values.update(extra)
    return _ordered(values)


def _ordered(values: Iterable[str]) -> tuple[str, ...]:
    kept = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
    return tuple(sorted(kept, key=lambda v: (-len(v), v)))


class SecretRedactor:
    """Replaces known secret values with `***` in strings, JSON text and nested values."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = _ordered(secrets)
        self.active = bool(values)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None
        # The same secrets as they appear inside serialized JSON (quotes, backslashes and
        # non-ASCII escaped, as the store's encoder writes them), so a JSON text can be
        # checked without decoding it.
        json_forms = {json.dumps(v)[1:-1] for v in values} | set(values)
        ordered = sorted(json_forms, key=len, reverse=True)
        self._json_pattern = re.compile("|".join(re.escape(v) for v in ordered)) if values else None

    def text(self, value: str) -> str:
        """`value` with every secret replaced by `***`."""
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string (keys included)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(MASK, value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def json_has_secret(self, json_text: str) -> bool:
        """Whether serialized JSON contains a secret (cheap pre-check before `value`)."""
        return self._json_pattern is not None and self._json_pattern.search(json_text) is not None


NO_SECRETS = SecretRedactor(())


def redactor_for(secrets: Iterable[str]) -> SecretRedactor:
    """The redactor of these secret values (compiled once per distinct set)."""
    return _redactor_for(_ordered(secrets))


@lru_cache(maxsize=32)
def _redactor_for(secrets: tuple[str, ...]) -> SecretRedactor:
    return SecretRedactor(secrets) if secrets else NO_SECRETS


def redactor_from_env(environ: Mapping[str, str] | None = None) -> SecretRedactor:
    """A redactor for the secrets currently in the environment."""
    return _redactor_for(secret_values(environ))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` replaced by `***` (for one-off use: a provider's
    answer, an error message)."""
    return redactor_for(secrets).text(text)


def masked_env(env: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """An agent's `env` for display: values under secret names shown as `***` (references
    such as `${NAME}` are not values and are shown as written)."""
    declared = declared_names(environ)
    return {
        name: value if is_reference(value) or not is_secret_name(name, declared) else MASK
        for name, value in env.items()
    }


_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def is_reference(value: str) -> bool:
    """`${NAME}`: a value taken from the runner's environment at each attempt."""
    return _REFERENCE.match(value) is not None


def reference_name(value: str) -> str | None:
    """NAME for a `${NAME}` reference, else None."""
    match = _REFERENCE.match(value)
    return match.group(1) if match else None
