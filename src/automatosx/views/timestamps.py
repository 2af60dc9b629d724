"""Times as the contract writes them: the one formatter lives in `store.timestamps` (stored
values carry them too); the read model and the CLI import it from here. Ages as the
commands take them (`--since 7d`, `--older-than 12h`) are read here too, so the CLI, the
Python API and the HTTP API accept the same ones."""

from __future__ import annotations

import re

from automatosx.errors import AxError
from automatosx.store.timestamps import iso

__all__ = ["DEFAULT_STATS_SINCE", "iso", "parse_age"]

DEFAULT_STATS_SINCE = "7d"  # the window `ax workflow stats` and `Client.stats` read by default

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


MAX_AGE_SECONDS = 100 * 365 * 86400  # older than any store: "since" stays a real date


def parse_age(text: str) -> float:
    """'30s', '15m', '12h', '7d' (or '2w') as seconds, at most 100 years: an age older
    than any store means "all of it" (`9999999w` once became a date before year 1, and a
    traceback)."""
    match = _AGE.match(text)
    if match is None:
        raise AxError(f"invalid age {text!r}: use a number and a unit, such as 30s, 15m, 12h or 7d")
    return min(float(match.group(1)) * _AGE_UNITS[match.group(2)], MAX_AGE_SECONDS)
