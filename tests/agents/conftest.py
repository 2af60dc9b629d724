"""Fixtures for the provider tests: loopback vendor APIs, the vendors' real CLIs, the
bundled local model and llama.cpp's own OpenAI-compatible server.

The CLIs come from the npm registry, installed once into a cache outside the repository
(`~/.cache/automatosx-tests/npm`, or `AX_TEST_NPM_DIR`) and reused by later runs; each CLI
test runs with a fresh HOME so nothing reads or writes the real user's configuration.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automatosx.agents.base import ProviderCall
from automatosx.agents.providers.local import bundled_model_path
from automatosx.definition.models import AgentSpec
from tests.agents.vendor_api import VendorAPI

NPM_PACKAGES = {
    "claude": "@anthropic-ai/claude-code@2.1.197",
    "codex": "@openai/codex@0.171.0",
    "gemini": "@google/gemini-cli@0.61.0",
}
NPM_DIR = Path(
    os.environ.get("AX_TEST_NPM_DIR", Path.home() / ".cache" / "automatosx-tests" / "npm")
)


def make_call(agent: AgentSpec, prompt: str = "Say hello.", **fields: Any) -> ProviderCall:
    values: dict[str, Any] = {
        "execution_id": "exec-test",
        "step_key": "step",
        "attempt": 1,
        "agent_name": "tester",
        "agent": agent,
        "prompt": prompt,
        "timeout_s": 60.0,
    }
    values.update(fields)
    return ProviderCall(**values)


@pytest.fixture
def vendor_api() -> Iterator[VendorAPI]:
    api = VendorAPI().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def vendor_cli_bin() -> Path:
    """The folder with `claude`, `codex` and `gemini`, installed from npm on first use."""
    bin_dir = NPM_DIR / "node_modules" / ".bin"
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs share one install
        installed = NPM_DIR / ".installed"
        wanted = " ".join(sorted(NPM_PACKAGES.values()))
        if not installed.is_file() or installed.read_text() != wanted:
            subprocess.run(
                ["npm", "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund",
                 "--loglevel=error", *NPM_PACKAGES.values()],
                check=True, timeout=600,
            )  # fmt: skip
            installed.write_text(wanted)
    for program in NPM_PACKAGES:
        assert (bin_dir / program).exists(), f"npm did not install {program}"
    return bin_dir


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    """A throwaway HOME (and TMPDIR) for one CLI run, as a new user has it: no settings of
    any vendor CLI (Gemini's API-key auth is the provider's to select, not the user's)."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    return home


@pytest.fixture
def cli_env(vendor_cli_bin: Path, cli_home: Path) -> dict[str, str]:
    """Agent `env` for a CLI provider: the npm bin folder first on PATH, the temp HOME."""
    return {
        "PATH": f"{vendor_cli_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(cli_home),
        "TMPDIR": str(cli_home / "tmp"),
        "XDG_CONFIG_HOME": str(cli_home / ".config"),
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="session")
def bundled_gguf() -> Path:
    """The bundled model's file (its packaged parts joined into the cache on first use)."""
    path = bundled_model_path()
    assert path is not None, "the bundled model is not installed (pip install -e '.[dev]')"
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(bundled_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on loopback; yields its `/v1` URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--model_alias", "local-model"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "llama_cpp.server did not start"
        time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
