"""Shell completion through the real `ax`, as the installed bash, zsh and fish scripts call it.

Each test reads the instruction the script sends (`_AX_COMPLETE=complete_bash`, ...) from
`ax --show-completion SHELL`, then runs `ax` with the shell's environment against a real
store holding a real execution.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AX, RunAx

WORKFLOW = """\
name: completion-demo
agents: {cat: {provider: command, command: [cat]}}
steps:
  - {key: parse, agent: cat, prompt: hi}
  - key: review
    agent: cat
    prompt: "item {{item}}"
    dependencies: [parse]
    forEach: {items: "[1, 2, 3]"}
"""


def instruction(run_ax: RunAx, shell: str) -> str:
    """What the script `ax --show-completion SHELL` installs sends on each TAB."""
    script = run_ax(
        "--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    )
    assert script.returncode == 0, script.stderr
    (found,) = set(re.findall(r"_AX_COMPLETE=(\w+)", script.stdout))
    return found


def complete(
    ax_env: dict[str, str], cwd: Path, shell: str, instruction: str, words: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`ax` run as the shell runs it for the command line `words` (the last word is the one
    being completed; a trailing space starts a new one)."""
    shell_env = {**ax_env, "_AX_COMPLETE": instruction, **env}
    if shell == "bash":
        parts = words.split(" ")
        shell_env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    else:
        shell_env |= {"_TYPER_COMPLETE_ARGS": words}
        if shell == "fish":
            shell_env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return subprocess.run([AX], capture_output=True, text=True, env=shell_env, cwd=cwd, timeout=60)


@pytest.fixture
def execution_id(run_ax: RunAx, tmp_path: Path) -> str:
    path = tmp_path / "demo.yaml"
    path.write_text(WORKFLOW)
    result = run_ax("workflow", "run", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["executionId"])


@pytest.mark.parametrize(
    "command", ["status", "events", "checkpoints", "output", "resume", "pause", "cancel"]
)
def test_bash_completes_execution_ids_from_the_store(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, execution_id: str, command: str
) -> None:
    bash = instruction(run_ax, "bash")
    for typed in ("", execution_id[:3], execution_id[:8], execution_id):
        result = complete(ax_env, tmp_path, "bash", bash, f"ax workflow {command} {typed}")
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.splitlines() == [execution_id], typed
    other = "0" if execution_id[0] != "0" else "1"
    result = complete(ax_env, tmp_path, "bash", bash, f"ax workflow {command} {other}")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")


def test_zsh_and_fish_describe_each_execution(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, execution_id: str
) -> None:
    zsh = complete(ax_env, tmp_path, "zsh", instruction(run_ax, "zsh"), "ax workflow status ")
    assert zsh.stderr == ""
    assert f'"{execution_id}":"completion-demo completed ' in zsh.stdout
    fish = complete(ax_env, tmp_path, "fish", instruction(run_ax, "fish"), "ax workflow status ")
    assert fish.stderr == ""
    assert fish.stdout.startswith(f"{execution_id}\tcompletion-demo completed ")


def test_step_keys_complete_from_the_execution(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, execution_id: str
) -> None:
    bash = instruction(run_ax, "bash")

    def keys(words: str) -> list[str]:
        result = complete(ax_env, tmp_path, "bash", bash, words)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout.split()

    prefix = execution_id[:8]
    assert keys(f"ax workflow output {prefix} ") == ["parse", "review"]  # the file's order
    assert keys(f"ax workflow output {prefix} re") == ["review"]
    assert keys(f"ax workflow output {prefix} review[") == ["review[0]", "review[1]", "review[2]"]
    assert keys("ax workflow output 00000000 ") == []  # no such execution: nothing, silently
    zsh = complete(
        ax_env, tmp_path, "zsh", instruction(run_ax, "zsh"), f"ax workflow output {prefix} "
    )
    assert '"parse":"completed"' in zsh.stdout and zsh.stderr == ""


def test_workflow_names_complete_for_show(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path, execution_id: str
) -> None:
    bash = instruction(run_ax, "bash")
    for typed in ("", "compl"):
        result = complete(ax_env, tmp_path, "bash", bash, f"ax workflow show {typed}")
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.split() == ["completion-demo"], typed
    assert complete(ax_env, tmp_path, "bash", bash, "ax workflow show x").stdout.split() == []
    zsh = complete(ax_env, tmp_path, "zsh", instruction(run_ax, "zsh"), "ax workflow show ")
    assert '"completion-demo":"1.0.0"' in zsh.stdout and zsh.stderr == ""


def test_completion_never_creates_a_database_nor_prints_an_error(
    run_ax: RunAx, ax_env: dict[str, str], tmp_path: Path
) -> None:
    bash = instruction(run_ax, "bash")
    missing = tmp_path / "new" / "ax.db"
    not_a_database = tmp_path / "garbage.db"
    not_a_database.write_bytes(b"this is not SQLite\n" * 100)
    for env in (
        {"AX_DB": str(missing)},
        {"AX_DB": "mysql://user:pw@host/db"},  # a bad setting: an error for commands
        {"AX_DB": str(not_a_database)},
        {"AX_DB": ""},  # the default .automatosx/ax.db of the working directory
    ):
        for words in ("ax workflow status ", "ax workflow output 12345678 ", "ax workflow show "):
            result = complete(ax_env, tmp_path, "bash", bash, words, **env)
            assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", ""), env
    assert not missing.parent.exists() and not (tmp_path / ".automatosx").exists()
    assert not_a_database.read_bytes() == b"this is not SQLite\n" * 100
    assert sorted(os.listdir(tmp_path)) == ["garbage.db"]
