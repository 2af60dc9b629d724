"""Shared rendering for every command: JSON for scripts, Rich tables and colours for people.

`--format json` prints exactly one JSON document on stdout; tables go to stdout too; notes
and progress go to stderr so they never pollute piped output.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from automatosx.views.timestamps import iso

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["iso"]

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that can
# make a terminal show text in another order than it reads ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def neutralise(text: str) -> str:
    """`text` safe to print on a terminal: each control character that could move the cursor,
    recolour, retitle or rewrite the screen (ESC first of all) is shown as its escape, `\\x1b`,
    instead of being obeyed. Tabs and newlines stay. Everything shown to people that came from
    agents, files or the store goes through this (the consoles below do it for every string
    they render); JSON output never does, it is exact."""
    if text.isprintable() or _CONTROL.search(text) is None:  # isprintable: the fast path
        return text
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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
            real = safe_console(**object.__getattribute__(self, "_options"))
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


def safe_console(**options: Any) -> Console:
    """A Rich console that neutralises control characters in every string it renders: print
    arguments, table cells and grid rows alike go through `Console.render_str`."""
    from rich.console import Console

    class SafeConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(neutralise(text), **kwargs)

    return SafeConsole(**options)


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
    "waiting": "yellow",
    "pending": "dim",
    "queued": "dim",
    "skipped": "dim",
}


def escape(text: str) -> str:
    """`text` with Rich markup escaped (Rich is imported on first use, see `_LazyConsole`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def write_table(
    out: Console, headers: Sequence[str], rows: Iterable[Sequence[tuple[str, str | None]]]
) -> None:
    """Rows of `(text, style)` cells in aligned columns under a bold header, written straight
    to the console's file. Rich's `Table` costs about a millisecond a row (14 s for a
    10,000-step status); this costs microseconds, so `status` stays linear and fast however
    large the execution. The last column is not padded (an error message may be long)."""
    body = [[(neutralise(text), style) for text, style in row] for row in rows]
    header = [(text, "bold") for text in headers]
    widths = [_width(text) for text in headers]
    for row in body:
        for i, (text, _) in enumerate(row):
            width = _width(text)
            if width > widths[i]:
                widths[i] = width
    color = out.color_system if out.color_system is not None and not out.no_color else None
    last = len(headers) - 1

    def line(cells: Sequence[tuple[str, str | None]]) -> str:
        parts = []
        for i, (text, style) in enumerate(cells):
            pad = "" if i == last else " " * (widths[i] - _width(text))
            parts.append(
                f"{_sgr(style, color)}{text}\x1b[0m{pad}" if color and style else text + pad
            )
        return "  ".join(parts).rstrip()

    lines = [
        line(header),
        "  ".join("─" * width for width in [*widths[:last], _width(headers[last])]),
    ]
    lines.extend(line(row) for row in body)
    out.file.write("\n".join(lines) + "\n")
    out.file.flush()


def _width(text: str) -> int:
    """Terminal cells `text` takes (wide characters count two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


@lru_cache(maxsize=32)
def _sgr(style: str, color_system: str | None) -> str:
    """The escape sequence that starts `style` on this console's colour system."""
    from rich.console import COLOR_SYSTEMS
    from rich.style import Style

    system = COLOR_SYSTEMS.get(color_system) if color_system else None
    rendered = Style.parse(style).render("x", color_system=system)
    return rendered[: rendered.index("x")] if "x" in rendered else ""


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
