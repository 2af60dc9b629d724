"""A real `ax ui` server for a test: the installed console script in a subprocess, on a
free loopback port, over the test's own store; its URL is read from the line it prints
once bound. `serve(db, *flags)` starts one (stopped when the test ends)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import AX

SERVING = re.compile(r"Serving the dashboard on (http://\S+/)")


@dataclass
class UiServer:
    url: str  # ends with "/"
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])


Serve = Callable[..., UiServer]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    started: list[UiServer] = []

    def start(db: str, *flags: str, env: dict[str, str] | None = None) -> UiServer:
        environ = {**os.environ, "AX_DB": db, "NO_COLOR": "1", **(env or {})}
        process = subprocess.Popen(
            [AX, "ui", "--port", "0", *flags],
            cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stderr is not None
        line = process.stderr.readline()  # printed once the socket is bound
        match = SERVING.search(line)
        if match is None:
            process.kill()
            rest = process.communicate(timeout=10)[1]
            raise AssertionError(f"ax ui did not start: {line}{rest}")
        server = UiServer(match.group(1), process)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            try:
                server.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.communicate()
