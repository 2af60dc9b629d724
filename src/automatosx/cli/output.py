"""Shared rendering for every command: JSON for scripts, Rich tables and colours for people.

`--format json` prints exactly one JSON document on stdout; tables go to stdout too; notes
and progress go to stderr so they never pollute piped output.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from automatosx.views.timestamps import iso

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["iso"]


def _piped_width() -> int | None:
    """Tables piped to a file or `grep` should not be squeezed into 80 columns (Rich's
    default without a terminal): like kubectl, use a wide line unless COLUMNS says otherwise."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 200


class _LazyConsole:
    """A Rich `Console` made on first use. Importing Rich costs ~35 ms, which commands that
    print JSON (and `run` before its first step) should not pay."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _real(self) -> Console:
        real = object.__getattribute__(self, "_console")
        if real is None:
            from rich.console import Console

            real = Console(**object.__getattribute__(self, "_options"))
            object.__setattr__(self, "_console", real)
        return cast("Console", real)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real(), name, value)

    def __enter__(self) -> Console:  # special methods bypass __getattr__
        return self._real().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._real().__exit__(*exc)


console = cast("Console", _LazyConsole(highlight=False, soft_wrap=False, width=_piped_width()))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False))


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


STATE_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "red",
    "running": "blue",
    "executing": "blue",
    "paused": "yellow",
    "pending": "dim",
    "skipped": "dim",
}


def escape(text: str) -> str:
    """`text` with Rich markup escaped (Rich is imported on first use, see `_LazyConsole`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def styled_state(state: str) -> str:
    style = STATE_STYLES.get(state, "blue" if state not in STATE_STYLES else "")
    return f"[{style}]{state}[/{style}]" if style else state


def relative_time(ts: float | None, now: float | None = None) -> str:
    """'15s ago', '3m ago', '2h ago', '4d ago'."""
    if ts is None:
        return "-"
    age = max(0.0, (time.time() if now is None else now) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{int(age // size)}{unit} ago"
    return f"{int(age)}s ago"


def human_duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{int(ms // 60_000)}m{int(ms % 60_000 // 1000):02d}s"


def human_size(size: int) -> str:
    """Sizes as KB (the contract's display unit), MB past a megabyte."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.2f} MB"
    return f"{size / 1024:.2f} KB"
