"""Rebuilding an execution's progress from its durable step records (resume, recovery).

The records, not the latest checkpoint, are the truth: a checkpoint may be older than the last
completed step, but every completion was committed before its dependents started. Per step:

- an attempt `completed`: the step is done and its output is reused (it never runs again);
- the latest attempt `running`: the runner died mid-attempt; the attempt is closed as
  `cancelled` ("interrupted") and the step runs again with the next attempt number;
- the latest attempt `failed`: final if the retry rules allow no other attempt (then an
  optional step counts as done-and-empty, any other step as failed), else the step was in
  its retry backoff and simply retries;
- `cancelled` or `skipped` rows: a never-finished attempt; the step runs (or is skipped) anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.runtime.attempts import retry_rules
from automatosx.store.records import StepExecutionRecord

INTERRUPTED_MESSAGE = "interrupted: the runner stopped during this attempt; it runs again"


@dataclass
class RecoveredProgress:
    outputs: dict[str, Any] = field(default_factory=dict)  # completed steps -> output
    empty_steps: set[str] = field(default_factory=set)  # optional steps that failed for good
    failed_steps: dict[str, str] = field(default_factory=dict)  # failed for good -> error
    skipped_steps: set[str] = field(default_factory=set)  # already recorded as skipped
    last_attempt: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # failed attempts (retry budget)
    interrupted: dict[str, int] = field(default_factory=dict)  # step -> its running attempt


def recover_progress(
    definition: WorkflowDefinition, records: list[StepExecutionRecord]
) -> RecoveredProgress:
    progress = RecoveredProgress()
    by_step: dict[str, list[StepExecutionRecord]] = {}
    for record in records:
        by_step.setdefault(record.step_key, []).append(record)
    for step in definition.steps:
        attempts = sorted(by_step.get(step.key, []), key=lambda r: r.attempt)
        if not attempts:
            continue
        latest = attempts[-1]
        progress.last_attempt[step.key] = latest.attempt
        failed = [r for r in attempts if r.state == "failed"]
        progress.failures[step.key] = len(failed)
        completed = [r for r in attempts if r.state == "completed"]
        if completed:
            progress.outputs[step.key] = completed[-1].output
        elif latest.state == "running":
            progress.interrupted[step.key] = latest.attempt
        elif latest.state == "failed":
            rules = retry_rules(step, definition.config)
            if not rules.may_retry(latest.error_kind or "provider_error", len(failed)):
                if step.optional:
                    progress.empty_steps.add(step.key)
                else:
                    progress.failed_steps[step.key] = latest.error_message or "failed"
        elif latest.state == "skipped":
            progress.skipped_steps.add(step.key)
    return progress
