"""How the pages write numbers for people: durations, costs, token counts, times.

The documents carry exact values (milliseconds, dollars, ISO-8601); the pages show them
rounded and with units, and keep the exact value in a `title` or a `datetime` attribute.
Registered as Jinja filters by `web.pages`.
"""

from __future__ import annotations

from datetime import datetime


def duration(ms: float | None) -> str:
    """`850 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`; empty for None (not finished)."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def cost(usd: float | None) -> str:
    """`$0.0123`; costs below a cent keep four decimals, since that is what steps cost."""
    if usd is None:
        return ""
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def when(iso: str | None) -> str:
    """An ISO-8601 time as `2025-01-31 14:05:09 UTC` (as stored); empty for None."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS = {
    "duration": duration,
    "cost": cost,
    "count": count,
    "percent": percent,
    "when": when,
}
