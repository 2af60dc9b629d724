"""Running the Python API in fresh interpreters: each script is `python -c` in its own
process, with `AX_DB` (and the working directory) of the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

AX = str(Path(sys.executable).with_name("ax"))


def env_for(db: str | Path) -> dict[str, str]:
    env = dict(os.environ)
    env["AX_DB"] = str(db)
    env.setdefault("NO_COLOR", "1")
    env["AX_USER"] = "tester"
    return env


def python(
    code: str, *, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python_ok(code: str, *, cwd: Path, env: dict[str, str]) -> Any:
    """Run `code`, which must exit 0; the JSON value of its last stdout line."""
    proc = python(code, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def start_python(code: str, *, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_python(proc: subprocess.Popen[str], timeout: float = 120) -> Any:
    """Wait for a started script, which must exit 0; the JSON value of its last line."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def ax(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AX, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def ax_json(*args: str, cwd: Path, env: dict[str, str]) -> Any:
    proc = ax(*args, "--format", "json", cwd=cwd, env=env)
    assert proc.returncode in (0, 1, 3, 4), proc.stderr
    return json.loads(proc.stdout)


def wait_for_file(path: Path, timeout: float = 60) -> str:
    """The text of `path` once a step has written it (a polling wait, not a timing)."""
    import time

    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)
    return path.read_text()


# A module of agents the tests' scripts import: `held` writes its execution ID to
# `<step>.started`, then waits until `<step>.release` exists; `count` notes each call.
AGENTS_MODULE = """
import json
import time
from pathlib import Path


def held(prompt, *, execution_id, step_key, attempt, context):
    Path(step_key + ".started").write_text(execution_id)
    while not Path(step_key + ".release").exists():
        time.sleep(0.02)
    return "held " + prompt


def count(prompt, *, execution_id, step_key, attempt, context):
    with open("calls.log", "a") as log:
        log.write(step_key + "\\n")
    return {"step": step_key, "prompt": prompt, "attempt": attempt}
"""


def write_agents_module(directory: Path, name: str = "test_agents") -> None:
    (directory / f"{name}.py").write_text(AGENTS_MODULE)


def calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []
