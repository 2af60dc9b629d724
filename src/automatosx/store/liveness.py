"""Whether an execution's runner is alive: what every reader needs to tell a running
execution from an orphan (its runner died, its state still says `executing`).

A runner is "hostname:pid:uuid4". Its lease is live while unexpired and, on this host,
while that pid exists; a runner on another host is trusted until its lease expires.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from automatosx.store.records import ExecutionRecord


@dataclass(frozen=True)
class OwnerId:
    host: str
    pid: int | None

    @classmethod
    def parse(cls, owner: str) -> OwnerId:
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        return cls(host, int(pid_text) if pid_text.isdigit() else None)


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def owner_is_dead(owner: str | None) -> bool:
    """The lease's owner is a process on this host that no longer runs."""
    if not owner:
        return True
    parsed = OwnerId.parse(owner)
    if parsed.host != socket.gethostname() or parsed.pid is None:
        return False
    return not pid_alive(parsed.pid)


def lease_is_live(execution: ExecutionRecord, now: float | None = None) -> bool:
    """Someone holds an unexpired lease and is not known to be dead."""
    if not execution.lease_owner or execution.lease_expires_at is None:
        return False
    if execution.lease_expires_at <= (time.time() if now is None else now):
        return False
    return not owner_is_dead(execution.lease_owner)


def is_orphaned(execution: ExecutionRecord, now: float | None = None) -> bool:
    """Not finished, not deliberately paused, and nobody alive is running it, nor will
    without being asked: a submitted execution is the workers' (they take it up again
    themselves: between two jobs, or while only approval gates wait, it has no runner)."""
    if execution.is_terminal or execution.state == "paused" or execution.queue_name:
        return False
    return not lease_is_live(execution, now)
