"""Workflows and runs the web tests share: real runs through the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import RunAx
from tests.runtime.support import start_ax, step, wait_until, workflow, write_workflow


def gate(key: str, deps: list[str] | None = None, message: str = "Ship it?") -> dict[str, Any]:
    return {"key": key, "dependencies": deps or [], "approval": {"message": message}}


def diamond(name: str = "diamond") -> dict[str, Any]:
    """plan -> (left, right) -> join; `right` fails once and is retried."""
    return workflow(
        [
            step("plan", "ax:output={\"items\":[1,2]}"),
            step("left", "left of {{plan}}", ["plan"]),
            step("right", "ax:fail-attempts=1", ["plan"], retryPolicy={"maxRetries": 1,
                 "retryDelayMs": 10}),
            step("join", "join", ["left", "right"]),
        ],
        name=name,
    )  # fmt: skip


def held_run(directory: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    """`ax workflow run` of `slow` -> `next`, once `slow` has started and waits for the
    returned file to exist (the test lets it finish by creating it)."""
    hold, held = directory / "hold", directory / "held"
    for flag in (hold, held):
        flag.unlink(missing_ok=True)
    data = workflow(
        [step("slow", f"ax:announce={held} ax:wait-file={hold}"), step("next", "x", ["slow"])]
    )
    path = write_workflow(directory, data)
    runner = start_ax(["workflow", "run", str(path)], env=env, cwd=directory)
    wait_until(held.exists)
    return runner, hold


def run_json(run_ax: RunAx, directory: Path, data: dict[str, Any], env: dict[str, str]) -> Any:
    """Run the workflow to its end through `ax workflow run --format json`; its document."""
    path = write_workflow(directory, data)
    result = run_ax("workflow", "run", str(path), "--format", "json", env=env)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def cli_json(run_ax: RunAx, env: dict[str, str], *args: str) -> Any:
    result = run_ax(*args, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
