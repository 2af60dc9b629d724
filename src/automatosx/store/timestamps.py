"""Times as the contract writes them (ISO-8601 UTC with milliseconds). Here, below both the
runtime and the read model, because a stored value can carry one too: an approval gate's
output says when it was decided."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds (the contract's timestamp form)."""
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
