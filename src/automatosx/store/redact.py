"""Masking secret values in everything the store writes (and anything else that asks).

A secret is the value of an environment variable whose name ends in `_KEY`, `_TOKEN`,
`_SECRET` or `_PASSWORD`, or is listed in `AX_SECRET_VARS` (comma-separated). Its value is
replaced by `***` wherever it appears inside a string. The pattern is compiled once per set
of secrets, and a store builds its redactor once when it opens, so the common case (no secret
in the text) costs one regex scan and the case with no secrets at all costs nothing.
Values shorter than four characters are ignored: masking "1" or "on" would shred ordinary data.
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


def secret_values(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secret values found in `environ` (default: the process environment), longest first."""
    env = os.environ if environ is None else environ
    declared = {name.strip() for name in env.get(SECRET_VARS_ENV, "").split(",") if name.strip()}
    values = {
        value
        for name, value in env.items()
        if (name.upper().endswith(SECRET_SUFFIXES) or name in declared)
        and len(value) >= MIN_SECRET_LENGTH
    }
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


class SecretRedactor:
    """Replaces known secret values with `***` in strings, JSON text and nested values."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.active = bool(values)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None
        # The same secrets as they appear inside serialized JSON (quotes, backslashes,
        # non-ASCII escaped), so a JSON text can be checked without decoding it.
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


def redactor_from_env(environ: Mapping[str, str] | None = None) -> SecretRedactor:
    """A redactor for the secrets currently in the environment."""
    return _redactor_for(secret_values(environ))


@lru_cache(maxsize=8)
def _redactor_for(secrets: tuple[str, ...]) -> SecretRedactor:
    return SecretRedactor(secrets) if secrets else NO_SECRETS


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with the values of the environment's secret variables replaced by `***`.

    For printing and one-off use; the store keeps its own redactor built at open.
    """
    return redactor_from_env(environ).text(text)
