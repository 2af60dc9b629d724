"""The `ax` entry point itself: version, help and one-line errors for bad usage."""

from __future__ import annotations

import itertools

from automatosx import __version__
from tests.conftest import RunAx


def test_version(run_ax: RunAx) -> None:
    result = run_ax("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ax {__version__}"


def test_help_lists_command_groups(run_ax: RunAx) -> None:
    result = run_ax("--help")
    assert result.returncode == 0
    for group in ("workflow", "agent", "provider"):
        assert group in result.stdout


def test_unknown_command_is_one_error_line(run_ax: RunAx) -> None:
    run_ax("workflow", "no-such-command").assert_clean_error(2)


def test_unknown_option_is_one_error_line(run_ax: RunAx) -> None:
    run_ax("--no-such-option").assert_clean_error(2)


WIDTH = 80
WRAP = WIDTH - 2  # Click wraps help two columns short of the terminal's width
SECTIONS = ("Arguments:", "Options:", "Commands:")


def _commands(help_text: str) -> list[str]:
    """The command names listed in a group's help (entries start at column 2)."""
    _, _, listing = help_text.partition("\nCommands:\n")
    return [line.split()[0] for line in listing.splitlines() if line[2:3].strip()]


def broken_lines(help_text: str) -> list[str]:
    """Lines that end before they had to: the next line's first word would have fitted, so
    a paragraph (or an option's help) was cut by hand, not by wrapping."""
    found = []
    lines = help_text.splitlines()
    in_section = False
    for line, following in itertools.pairwise(lines):
        in_section = in_section or line in SECTIONS
        if not line.strip() or not following.strip() or following in SECTIONS:
            continue
        indent, next_indent = (
            len(line) - len(line.lstrip()),
            len(following) - len(following.lstrip()),
        )
        # In the lists, a line indented deeper than an entry continues it; in prose, a line
        # at the paragraph's indentation does.
        continues = next_indent > 2 if in_section else next_indent == indent
        if continues and len(line.rstrip()) + 1 + len(following.split()[0]) <= WRAP:
            found.append(f"{line!r} / {following!r}")
    return found


def test_every_help_reads_well_at_80_columns(run_ax: RunAx) -> None:
    """Every command's --help, as an 80-column terminal shows it: nothing wider, no type
    shown for a flag (`--help <bool>`), no sentence cut by hand or by "...", no Rich box."""
    env = {"COLUMNS": str(WIDTH)}
    pages: dict[str, str] = {}
    pending: list[tuple[str, ...]] = [()]
    while pending:
        path = pending.pop()
        result = run_ax(*path, "--help", env=env)
        assert result.returncode == 0 and not result.stderr, (path, result.stderr)
        pages[" ".join(path) or "ax"] = result.stdout
        pending += [(*path, name) for name in _commands(result.stdout)]
    assert len(pages) >= 23 and {"workflow run", "workflow status", "agent show"} <= set(pages)
    for name, text in pages.items():
        assert text.startswith("Usage: ax"), name
        assert all(len(line) <= WIDTH for line in text.splitlines()), name
        assert "<bool>" not in text and "╭" not in text, (name, text)
        assert broken_lines(text) == [], (name, broken_lines(text))
        _, _, listing = text.partition("\nCommands:\n")
        assert "..." not in listing, (name, listing)
