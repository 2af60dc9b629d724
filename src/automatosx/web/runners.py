"""Executions the dashboard resumed, each driven on a thread of its own.

`POST .../resume` is the dashboard's `ax workflow resume`: the server takes the lease over
and runs the rest of the execution in its own process, as the CLI would in the foreground.
Each runner gets a thread with its own event loop (`api.running.drive`), so a long step
holds up no request. When the server stops it asks them to pause and waits for the running
steps to finish, so nothing is left orphaned; a later `resume` continues them.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from automatosx.api.running import drive, requeue_if_submitted, resume_run
from automatosx.errors import AxError
from automatosx.runtime.control import pause_execution

if TYPE_CHECKING:
    from automatosx.runtime.engine import ExecutionRunner
    from automatosx.store.base import Store

STOP_WAIT_SECONDS = 30.0


class BackgroundRunners:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._running: dict[str, tuple[ExecutionRunner, threading.Thread]] = {}

    def resume(self, id_or_prefix: str) -> str:
        """Take the execution over and start driving it; its full ID. Raises what
        `ax workflow resume` raises (NotFoundError, StateConflictError)."""
        submitted = requeue_if_submitted(self._store, id_or_prefix)
        if submitted is not None:  # the workers run it, not this server
            return submitted.id
        runner = resume_run(self._store, id_or_prefix)
        thread = threading.Thread(
            target=self._drive, args=(runner,), name=f"ax-ui-run-{runner.execution_id[:8]}",
            daemon=True,
        )  # fmt: skip
        with self._lock:
            self._running[runner.execution_id] = (runner, thread)
        thread.start()
        return runner.execution_id

    def _drive(self, runner: ExecutionRunner) -> None:
        try:
            drive(runner)
        except Exception:  # the execution's own record says how it ended
            pass
        finally:
            with self._lock:
                self._running.pop(runner.execution_id, None)

    def stop(self, wait_s: float = STOP_WAIT_SECONDS) -> None:
        """Pause every execution still running here and wait for their runners to end."""
        with self._lock:
            running = list(self._running.values())
        for runner, _ in running:
            with contextlib.suppress(AxError):  # AxError: it ended meanwhile
                pause_execution(self._store, runner.execution_id)  # as any process asks
        for _, thread in running:
            thread.join(wait_s)
