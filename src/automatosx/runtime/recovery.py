"""Rebuilding an execution from its stored step instances (resume, recovery, direct pause).

The instance records, not the latest checkpoint, are the truth: a checkpoint may be older
than the last completed step, but every change of an instance was committed before anything
that depended on it happened. Every stored instance is kept, whatever created it (a step of
the definition or an instance made at run time); a step of the definition with no instance
yet (its execution's first write never happened) gets a pending one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from automatosx.runtime import transitions
from automatosx.runtime.plans import StepPlan
from automatosx.store.records import PutInstance, StepInstanceRecord, WriteOp


def recovered_instances(
    execution_id: str, plans: Mapping[str, StepPlan], stored: Iterable[StepInstanceRecord]
) -> tuple[list[StepInstanceRecord], list[WriteOp]]:
    """(every instance of the execution, the operations storing the ones that were missing)."""
    records = list(stored)
    known = {record.key for record in records}
    missing = [
        transitions.new_instance(execution_id, plan)
        for key, plan in plans.items()
        if key not in known
    ]
    return records + missing, [PutInstance(record) for record in missing]
