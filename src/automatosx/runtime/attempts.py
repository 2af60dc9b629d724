"""How many attempts a step gets and how long to wait between them (SPEC section 5).

attempts = 1 + maxRetries (the step's `retryPolicy.maxRetries`, else `config.maxRetries`:
a policy that leaves it out inherits the workflow's); the delay
before retry n (1-based) is `retryDelayMs * retryBackoffMultiplier^(n-1)` plus at most 10%
jitter so many failing steps do not retry in lock-step. `cancelled` never retries, and neither
do `template_error` and `expression_error`: a prompt or an expression that fails on fixed
upstream outputs always will. Nor does `worker_lost` (`ax worker`): the step already ran
again each time its worker was lost.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from automatosx.definition.models import RetryPolicy, StepSpec, WorkflowConfig

NEVER_RETRIED = frozenset({"cancelled", "template_error", "expression_error", "worker_lost"})
# Retried only when a retry policy names them: a rejected key stays rejected on a retry.
RETRIED_ONLY_WHEN_LISTED = frozenset({"auth_error"})
MAX_JITTER = 0.10


@dataclass(frozen=True)
class RetryRules:
    max_attempts: int
    delay_ms: int
    multiplier: float
    retryable: frozenset[str] | None  # None: every kind but NEVER_RETRIED and auth errors

    def may_retry(self, kind: str, failures: int) -> bool:
        """After `failures` failed attempts, the last with `kind`: is another allowed?"""
        if failures >= self.max_attempts or kind in NEVER_RETRIED:
            return False
        if self.retryable is None:
            return kind not in RETRIED_ONLY_WHEN_LISTED
        return kind in self.retryable

    def delay_before_retry(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based), jitter included."""
        base = self.delay_ms * self.multiplier ** (retry - 1)
        jitter = (rng or random).uniform(0.0, MAX_JITTER) * base
        return (base + jitter) / 1000.0


def retry_rules(step: StepSpec, config: WorkflowConfig) -> RetryRules:
    if step.workflow is not None:  # a sub-workflow: its child's steps retry, not the step
        return _default_rules(0)
    if step.retry_policy is None:
        return _default_rules(config.max_retries)
    return _rules(step.retry_policy, config.max_retries)


@lru_cache(maxsize=32)
def _default_rules(max_retries: int) -> RetryRules:
    """The rules of steps without `retryPolicy`, built once and shared (a pydantic policy
    per step was a tenth of preparing a 10,000-step run, and its rules 4% of its memory)."""
    return _rules(RetryPolicy(max_retries=max_retries), max_retries)


def _rules(policy: RetryPolicy, default_max_retries: int) -> RetryRules:
    retryable = policy.retryable_errors
    max_retries = default_max_retries if policy.max_retries is None else policy.max_retries
    return RetryRules(
        max_attempts=1 + max_retries,
        delay_ms=policy.retry_delay_ms,
        multiplier=policy.retry_backoff_multiplier,
        retryable=None if retryable is None else frozenset(retryable),
    )
