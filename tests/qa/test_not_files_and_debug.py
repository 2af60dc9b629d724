"""Files that are not files, and `--debug`, through the real CLI.

A FIFO (or a device, a socket) given as the workflow is refused at once: opening a FIFO
waits for a writer, so `ax workflow run fifo` used to hang forever. The subprocess timeout
is the guard; a hang would hit it (these commands answer in well under a second once
Python has started). `--debug` adds a traceback but keeps the command's exit code.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.conftest import RunAx

HANG_GUARD_S = 20  # far above the answer (~0.5 s with start-up), far below "forever"


@pytest.mark.parametrize("command", ["validate", "run", "graph"])
def test_a_fifo_as_the_workflow_is_refused_at_once(
    run_ax: RunAx, tmp_path: Path, command: str
) -> None:
    os.mkfifo(tmp_path / "flow.yaml")
    result = run_ax("workflow", command, "flow.yaml", timeout=HANG_GUARD_S)
    result.assert_clean_error(2)
    assert result.stderr == ("error: flow.yaml: is a FIFO (named pipe), not a regular file\n")
    assert not (tmp_path / "ax.db").exists()


def test_a_device_or_a_socket_is_refused_naming_what_it_is(run_ax: RunAx, tmp_path: Path) -> None:
    result = run_ax("workflow", "validate", "/dev/zero", timeout=HANG_GUARD_S)
    result.assert_clean_error(2)
    assert "/dev/zero: is a character device, not a regular file" in result.stderr
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "flow.yaml"))
        result = run_ax("workflow", "validate", "flow.yaml", timeout=HANG_GUARD_S)
    result.assert_clean_error(2)
    assert "flow.yaml: is a socket, not a regular file" in result.stderr


def test_a_symlink_to_a_regular_file_is_still_read(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text(
        "name: linked\nsteps:\n  - key: a\n    agent: backend\n    prompt: hi\n"
    )
    (tmp_path / "flow.yaml").symlink_to(tmp_path / "real.yaml")
    result = run_ax("workflow", "validate", "flow.yaml")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "workflow", "run", "broken.yaml"],
        ["workflow", "run", "broken.yaml", "--debug"],
        ["workflow", "validate", "broken.yaml", "--debug"],
        ["--debug", "workflow", "status", "0123456789abcdef"],
    ],
    ids=" ".join,
)
def test_debug_keeps_the_exit_code_of_bad_input(
    run_ax: RunAx, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    result = run_ax(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("error: ")


def test_debug_prints_the_traceback_of_an_error(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    plain = run_ax("workflow", "run", "broken.yaml")
    plain.assert_clean_error(2)
    debug = run_ax("--debug", "workflow", "run", "broken.yaml")
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "WorkflowValidationError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


def test_debug_keeps_the_exit_code_of_a_bad_setting(run_ax: RunAx) -> None:
    result = run_ax("--debug", "workflow", "runs", env={"AX_LEASE_SECONDS": "abc"})
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: AX_LEASE_SECONDS ")


def test_debug_is_listed_in_help(run_ax: RunAx) -> None:
    result = run_ax("--help")
    assert result.returncode == 0
    assert "--debug" in result.stdout
    assert "traceback" in result.stdout.lower()
