"""The `ax` entry point itself: version, help and one-line errors for bad usage."""

from __future__ import annotations

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
