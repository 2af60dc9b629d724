"""Keeping API keys out of everything a provider returns or raises.

A provider reads its key from the environment and sends it in a header; nothing it hands
back (output, error message) may contain it, even when a server echoes it or a CLI prints
it in a stack trace. The store masks secret-looking variables again before writing, but
providers clean up at the source so no layer depends on another's diligence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
SECRET_VARS_ENV = "AX_SECRET_VARS"  # extra names the user declares secret, comma-separated
MASK = "***"
_MIN_SECRET_LEN = 4  # masking "" or "1" would shred ordinary text


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Values of variables named like secrets or declared in `AX_SECRET_VARS`, plus `extra`,
    longest first."""
    source = os.environ if env is None else env
    declared = {n.strip() for n in source.get(SECRET_VARS_ENV, "").split(",") if n.strip()}
    values = {v for k, v in source.items() if k.upper().endswith(SECRET_SUFFIXES) or k in declared}
    values.update(extra)
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LEN:
            text = text.replace(secret, MASK)
    return text
