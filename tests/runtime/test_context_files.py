"""`ax workflow run --context-file NAME=PATH`: a file's text as a context value, read once,
stored with the execution (a resume sees the same text) and refused, with one `error:` line
and exit 2 before anything runs, when it is not a small UTF-8 file inside the working
directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from automatosx.runtime.context import CONTEXT_FILE_VALUE_MAX_BYTES, read_context_files
from automatosx.store import open_store
from tests.conftest import RunAx
from tests.runtime.support import (
    agent_runs,
    pause_and_release,
    start_ax,
    step,
    wait_until,
    workflow,
    write_workflow,
)

CODE = "def f(x):\n    return x  # ünïcode\n"


def test_the_file_text_is_the_context_value(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.py").write_text(CODE)
    (tmp_path / "notes.txt").write_text("\ufeffnotes")  # a BOM is not part of the text
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{code}}|{{notes}}|{{n}}")]))
    result = run_ax(
        "workflow", "run", str(path), "--format", "json", "--context", '{"n": 1}',
        "--context-file", "code=src/f.py", "--context-file", f"notes={tmp_path / 'notes.txt'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["context"] == {"n": 1, "code": CODE, "notes": "notes"}
    assert document["stepResults"]["a"] == f"ax:echo {CODE}|notes|1"


def test_resume_reads_the_stored_text_not_the_file_again(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, ledger: Path
) -> None:
    gate = tmp_path / "gate"
    (tmp_path / "f.py").write_text(CODE)
    data = workflow(
        [step("hold", f"ax:wait-file={gate}"), step("b", "ax:echo {{code}}|", ["hold"])]
    )
    path = write_workflow(tmp_path, data)
    runner = start_ax(
        ["workflow", "run", str(path), "--format", "json", "--context-file", "code=f.py"],
        env=ax_env, cwd=tmp_path,
    )  # fmt: skip
    wait_until(lambda: bool(agent_runs(ledger)))
    execution_id, _ = pause_and_release(run_ax, runner, tmp_path, gate)
    (tmp_path / "f.py").write_text("changed after the start\n")
    resumed = run_ax("workflow", "resume", execution_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["stepResults"]["b"] == f"ax:echo {CODE}|"


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """spec -> (its argument, what the error says)."""
    outside = tmp_path.parent / f"outside-{tmp_path.name}.py"
    outside.write_text("secret = 1\n")
    (tmp_path / "link.py").symlink_to(outside)
    (tmp_path / "big.py").write_text("x" * (CONTEXT_FILE_VALUE_MAX_BYTES + 1))
    (tmp_path / "latin1.py").write_bytes("café = 1\n".encode("latin-1"))
    (tmp_path / "nul.bin").write_bytes(b"ab\x00cd")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe")
    return {
        "outside": (f"code={outside}", "is outside the working directory"),
        "dotdot": (f"code=../{outside.name}", "is outside the working directory"),
        "symlink out": ("code=link.py", "is outside the working directory"),
        "missing": ("code=nope.py", "cannot read nope.py"),
        "too big": ("code=big.py", "cannot read big.py: is larger than the limit of 65536 bytes"),
        "not utf-8": ("code=latin1.py", "is not UTF-8 text"),
        "nul bytes": ("code=nul.bin", "is not text"),
        "directory": ("code=folder", "cannot read folder: is a directory, not a file"),
        "fifo": ("code=pipe", "cannot read pipe: is a FIFO (named pipe), not a regular file"),
        "no name": ("=f.py", "expected NAME=PATH"),
        "no path": ("code=", "expected NAME=PATH"),
        "bad name": ("my code=f.py", "expected NAME=PATH"),
    }


CASES = [
    "outside", "dotdot", "symlink out", "missing", "too big", "not utf-8", "nul bytes",
    "directory", "fifo", "no name", "no path", "bad name",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_context_files_exit_2_before_anything_runs(
    run_ax: RunAx, tmp_path: Path, ledger: Path, case: str
) -> None:
    spec, expected = _bad_inputs(tmp_path)[case]
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{code}}")]))
    # The subprocess timeout is the guard: a FIFO is refused, not waited on.
    result = run_ax("workflow", "run", str(path), "--context-file", spec, timeout=20)
    result.assert_clean_error(2)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: --context-file") and expected in line, line
    assert not ledger.exists()
    db = tmp_path / "ax.db"
    assert not db.exists() or not open_store(str(db)).list_executions()


def test_a_name_given_twice_is_refused(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(CODE)
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{code}}")]))
    twice = run_ax("workflow", "run", str(path), "--context-file", "code=f.py",
                   "--context-file", "code=f.py")  # fmt: skip
    twice.assert_clean_error(2)
    assert "'code' is given twice" in twice.stderr
    both = run_ax("workflow", "run", str(path), "--context", '{"code": 1}',
                  "--context-file", "code=f.py")  # fmt: skip
    both.assert_clean_error(2)
    assert "'code' is given in --context too" in both.stderr


def test_the_bound_is_inclusive_and_the_working_directory_explicit(tmp_path: Path) -> None:
    (tmp_path / "max.py").write_text("y" * CONTEXT_FILE_VALUE_MAX_BYTES)
    values = read_context_files(["code=max.py"], {"a": 1}, workdir=tmp_path)
    assert values == {"a": 1, "code": "y" * CONTEXT_FILE_VALUE_MAX_BYTES}


def test_a_fifo_as_context_json_is_refused_not_waited_on(run_ax: RunAx, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "context.json")
    path = write_workflow(tmp_path, workflow([step("a", "ax:echo {{who}}")]))
    result = run_ax("workflow", "run", str(path), "--context", "@context.json", timeout=20)
    result.assert_clean_error(2)
    assert "cannot read context.json: is a FIFO (named pipe), not a regular file" in result.stderr
