"""The Python API (SPEC section 12): what `import automatosx as ax` offers, built on the
same engine, store and read model as the `ax` command.

    wf = ax.load_workflow("review.yaml")            # or ax.Workflow.from_dict({...})
    result = ax.run_workflow(wf, context={...})     # or: await ax.run_workflow_async(...)
    client = ax.Client()                            # executions, status, pause, resume, ...

See docs/python-api.md. The names are exported from `automatosx` itself, loaded on first use.
"""

from __future__ import annotations

from automatosx.api.client import Client
from automatosx.api.errors import (
    AxError,
    NotFoundError,
    RunningLoopError,
    StateConflictError,
    StepError,
    WorkflowValidationError,
)
from automatosx.api.results import (
    Checkpoint,
    Event,
    ExecutionResult,
    PendingApproval,
    RunSummary,
    StepStatus,
    WorkflowSummary,
)
from automatosx.api.running import run_workflow, run_workflow_async
from automatosx.api.workflow import Workflow, load_workflow

__all__ = [
    "AxError",
    "Checkpoint",
    "Client",
    "Event",
    "ExecutionResult",
    "NotFoundError",
    "PendingApproval",
    "RunSummary",
    "RunningLoopError",
    "StateConflictError",
    "StepError",
    "StepStatus",
    "Workflow",
    "WorkflowSummary",
    "WorkflowValidationError",
    "load_workflow",
    "run_workflow",
    "run_workflow_async",
]
