"""Fixtures shared by every test: running the real `ax` CLI in a subprocess.

`run_ax` runs the installed console script exactly as a user would, with `AX_DB` pointing at
a fresh SQLite file in the test's temporary directory and the test directory as cwd.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

AX = str(Path(sys.executable).with_name("ax"))


@dataclass
class AxResult:
    returncode: int
    stdout: str
    stderr: str

    def assert_clean_error(self, code: int = 2) -> None:
        """Exit `code`, one `error:` line on stderr, no traceback."""
        assert self.returncode == code, (self.returncode, self.stdout, self.stderr)
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), self.stderr


RunAx = Callable[..., AxResult]


@pytest.fixture
def ax_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["AX_DB"] = str(tmp_path / "ax.db")
    env.setdefault("NO_COLOR", "1")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def run_ax(tmp_path: Path, ax_env: dict[str, str]) -> RunAx:
    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> AxResult:
        proc = subprocess.run(
            [AX, *args],
            input=input,
            capture_output=True,
            text=True,
            env={**ax_env, **(env or {})},
            cwd=cwd or tmp_path,
            timeout=timeout,
        )
        return AxResult(proc.returncode, proc.stdout, proc.stderr)

    return run
