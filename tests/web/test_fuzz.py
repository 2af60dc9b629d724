"""The OpenAPI document fuzzed with schemathesis through a real server over real
executions: no request, however odd, gets a 5xx; every response has a documented status,
content type and a body matching its schema."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AX
from tests.runtime.support import step, workflow, write_workflow
from tests.web.support import diamond, gate

TOKEN = "fuzzing-token-0123456789"


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, "AX_DB": str(home / "ax.db"), "NO_COLOR": "1"}
    for data in [diamond(), workflow([step("a", "<script>alert(1)</script> ax:echo")])]:
        path = write_workflow(home, data)
        subprocess.run([AX, "workflow", "run", str(path)], env=env, cwd=home, check=True,
                       capture_output=True)  # fmt: skip
    waiting = subprocess.Popen(
        [AX, "workflow", "run", str(write_workflow(home, workflow([gate("review")])))],
        env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [AX, "ui", "--port", "0", "--token", TOKEN], env=env, cwd=home,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        match = re.search(r"(http://\S+/)", server.stderr.readline())
        assert match, "ax ui did not start"
        yield match.group(1)
    finally:  # however the fixture ends, neither process outlives the module
        for process in (server, waiting):
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_no_request_gets_a_server_error_and_every_response_matches(
    ui_url: str, tmp_path: Path
) -> None:
    """schemathesis's command line (its pytest plugin does not run under pytest 9): every
    check, on every operation, valid and invalid inputs; it exits non-zero on any failure."""
    result = subprocess.run(
        [
            str(Path(AX).with_name("schemathesis")), "run", f"{ui_url}api/v1/openapi.json",
            "--checks", "all", "--max-examples", "25", "--seed", "1",
            "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "30",
            "--workers", "1", "--no-color", "--suppress-health-check", "all",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout


def test_the_fuzzed_store_still_holds_its_runs(ui_url: str, tmp_path: Path) -> None:
    import httpx

    runs = httpx.get(f"{ui_url}api/v1/executions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert len(runs.json()) == 3
