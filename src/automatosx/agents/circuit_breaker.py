"""Circuit breakers: stop calling a provider that keeps failing, try it again later.

After `failure_threshold` consecutive failures a provider's breaker *opens*: the router
skips it (falling back to the agent's next provider, or failing fast with
`provider_unavailable`) instead of spending every step's time on a dead endpoint. After
`cooldown_s` it is *half-open*: one trial call goes through; success closes the breaker,
failure opens it for another cooldown. Breakers live for the process, shared by every
execution it runs, and are keyed by provider *and* endpoint, so one broken base URL does
not shut out another server behind the same provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_COOLDOWN_S = 30.0


@dataclass
class CircuitBreaker:
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    cooldown_s: float = DEFAULT_COOLDOWN_S
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    _trial_running: bool = False

    def try_acquire(self) -> bool:
        """May a call go through now? In half-open state only one trial at a time does."""
        if self.state == "open":
            assert self.opened_at is not None
            if self.clock() - self.opened_at < self.cooldown_s:
                return False
            self.state = "half_open"
            self._trial_running = False
        if self.state == "half_open":
            if self._trial_running:
                return False
            self._trial_running = True
        return True

    def record_success(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self.state == "half_open" or self.consecutive_failures >= self.failure_threshold:
            self.state = "open"
            self.opened_at = self.clock()
        self._trial_running = False

    def release(self) -> None:
        """The call ended without a verdict (it was cancelled): let another trial in."""
        self._trial_running = False

    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets a trial through."""
        if self.state != "open" or self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))


@dataclass
class BreakerBoard:
    """The breakers of one process, created on first use with the board's settings."""

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    cooldown_s: float = DEFAULT_COOLDOWN_S
    clock: Callable[[], float] = time.monotonic
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def breaker(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = CircuitBreaker(self.failure_threshold, self.cooldown_s, self.clock)
                self._breakers[key] = breaker
            return breaker

    def snapshot(self) -> dict[str, BreakerState]:
        with self._lock:
            return {key: breaker.state for key, breaker in self._breakers.items()}


PROCESS_BREAKERS = BreakerBoard()
