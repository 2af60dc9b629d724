"""Fixtures shared by every test: running the real `ax` CLI in a subprocess, and real stores.

`run_ax` runs the installed console script exactly as a user would, with `AX_DB` pointing at
a fresh SQLite file in the test's temporary directory and the test directory as cwd.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from automatosx.store.base import Store

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


# ---- stores (tests/store owns these; any area may use them) ----

PG_TEST_URL = os.environ.get("AX_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema of its own for one test, dropped afterwards."""
    import psycopg

    name = f"ax_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_TEST_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_TEST_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    """An `AX_DB` URL selecting PostgreSQL in this test's own schema."""
    return f"{PG_TEST_URL}?schema={pg_schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An `AX_DB` value for each store: a SQLite file in tmp_path, a fresh PG schema."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store of each kind (the tests using it run once per store)."""
    from automatosx.store import open_store

    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
