"""How values become column text: compact JSON and plain strings, with secrets masked.

Both stores keep JSON as text (SQLite TEXT, PostgreSQL `json`, which keeps key order), so
the same encoder serves both. Encoding never fails on odd values: objects JSON cannot express
are stored as their `str()`, NaN and Infinity as null, lone surrogates (undecodable
subprocess bytes) and NUL characters are replaced, because a runner must never lose a
durable write over a stray byte.
"""

from __future__ import annotations

import json
import math
from typing import Any

from automatosx.secrets import SecretRedactor

# One encoder for every value: `json.dumps` with non-default options builds a new
# JSONEncoder per call, a measurable part of a step's three encodings.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False)


def _encode(value: Any) -> str:
    """JSON text of `value`; NaN and Infinity (not JSON: PostgreSQL's json type refuses
    them, other readers too) become null, as in JavaScript's JSON.stringify."""
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return _ENCODER.encode(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Whether `value` is already exactly what the store gives back: str keys, finite floats,
    lists, no other types (most outputs are; checking is cheaper than a round trip)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 100:
        return False
    if type(value) is list:
        return all(_plain_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def as_stored(value: Any, redactor: SecretRedactor) -> Any:
    """`value` exactly as the store will give it back (secrets masked, NaN and Infinity as
    null, tuples as lists, keys as strings, other objects as their `str()`). The runtime
    hands this to dependents, so a live run and a resumed one see the same values."""
    if isinstance(value, str):
        return redactor.text(value) if redactor.active else value
    if not _plain_json(value):
        value = json.loads(_encode(value))
    if redactor.active and redactor.json_has_secret(_encode(value)):
        value = redactor.value(value)
    return value


class ColumnCodec:
    """Encodes values for storage through one `SecretRedactor` (built when the store opens)."""

    def __init__(self, redactor: SecretRedactor) -> None:
        self.redactor = redactor

    def json(self, value: Any) -> str:
        """Compact JSON text of `value`, secrets masked."""
        text = _encode(value)
        if self.redactor.active and self.redactor.json_has_secret(text):
            text = _encode(self.redactor.value(value))
        return text

    def text(self, value: str | None) -> str | None:
        """A plain string column (error messages, labels), secrets masked."""
        if value is None:
            return None
        if not value.isascii():
            value = value.encode("utf-8", "replace").decode("utf-8")
        if "\x00" in value:
            value = value.replace("\x00", "")
        return self.redactor.text(value) if self.redactor.active else value


def load_json(text: str | None) -> Any:
    """The value of a JSON column (NULL reads as None)."""
    return None if text is None else json.loads(text)
