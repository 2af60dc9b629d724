"""Stopping a subprocess and everything it spawned.

Subprocess providers start each attempt in its own session (`start_new_session=True`), so
the attempt's process group id is the child's pid; killing the group reaches grandchildren
that a plain `proc.kill()` would orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

TERM_GRACE_S = 0.5


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def kill_group(proc: asyncio.subprocess.Process, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the group, give the leader a short grace, then SIGKILL whatever is left."""
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace_s)
    signal_group(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        await asyncio.shield(proc.wait())
