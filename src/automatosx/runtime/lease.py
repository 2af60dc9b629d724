"""How long a runner's lease lasts, how often it renews it, and who a runner is.

A runner identifies itself as "hostname:pid:uuid4" so another process on the same host can
tell a dead runner (its pid is gone) from a slow one without waiting for the lease to expire
(`store.liveness`). The lease duration is configurable (`AX_LEASE_SECONDS`) so tests can
use short leases.
"""

from __future__ import annotations

import os
import socket
import uuid

from automatosx import settings

DEFAULT_LEASE_SECONDS = 30.0
CONTROL_POLL_S = 0.1  # how often a runner looks for pause/cancel requests
# ... and for approval decisions while nothing runs but gates wait: a gate may wait for days,
# and a person's decision or a pause taking half a second is no loss.
GATES_ONLY_POLL_S = 0.5


def lease_seconds() -> float:
    """`AX_LEASE_SECONDS` if set (tests use ~1 s), else 30 s; an unusable value is an error
    (`automatosx.settings`), not a lease nobody asked for."""
    return settings.lease_seconds() or DEFAULT_LEASE_SECONDS


def heartbeat_interval(seconds: float) -> float:
    """Renew at a third of the lease so two missed beats still leave it alive."""
    return max(0.05, seconds / 3)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"
