"""Who owns an execution, for how long, and whether its owner is still alive.

A runner identifies itself as "hostname:pid:uuid4" so another process on the same host can
tell a dead runner (its pid is gone) from a slow one without waiting for the lease to expire.
The lease duration is configurable (`AX_LEASE_SECONDS`) so tests can use short leases.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

from automatosx.store.records import ExecutionRecord

DEFAULT_LEASE_SECONDS = 30.0
CONTROL_POLL_S = 0.1  # how often a runner looks for pause/cancel requests


def lease_seconds() -> float:
    """`AX_LEASE_SECONDS` if set (tests use ~1 s), else 30 s."""
    raw = os.environ.get("AX_LEASE_SECONDS")
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_LEASE_SECONDS
    return value if value > 0 else DEFAULT_LEASE_SECONDS


def heartbeat_interval(seconds: float) -> float:
    """Renew at a third of the lease so two missed beats still leave it alive."""
    return max(0.05, seconds / 3)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"


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
    """Not finished, not deliberately paused, and nobody alive is running it."""
    if execution.is_terminal or execution.state == "paused":
        return False
    return not lease_is_live(execution, now)
