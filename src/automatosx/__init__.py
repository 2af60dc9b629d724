"""AutomatosX: a durable, declarative orchestrator for multi-agent AI workflows.

    import automatosx as ax

    wf = ax.load_workflow("review.yaml")            # or ax.Workflow.from_dict({...})
    result = ax.run_workflow(wf, context={"filePath": "x.py"})
    result.state, result.execution_id, result.step_results
    ax.Client().status(result.execution_id)

Kept import-light on purpose: `ax --version` must not pay for pydantic, Rich or a database
driver, nor even for `typing` and `dataclasses` (~10 ms each). Every name below is loaded
on first access (module `__getattr__`): `StepError` and the errors from the bottom module,
the rest from `automatosx.api`. See docs/python-api.md.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from automatosx.api.client import Client
    from automatosx.api.errors import RunningLoopError
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
    from automatosx.errors import (
        AxError,
        NotFoundError,
        StateConflictError,
        StepError,
        WorkflowValidationError,
    )

__version__ = "0.1.0"

# name -> the module to import when the name is first used. Every API name comes through
# the `automatosx.api` package, so two threads reaching for different names at once import
# the same module first (importing its submodules in two orders at once would deadlock).
_LAZY = {
    "AxError": "automatosx.errors",
    "NotFoundError": "automatosx.errors",
    "StateConflictError": "automatosx.errors",
    "StepError": "automatosx.errors",
    "WorkflowValidationError": "automatosx.errors",
    "RunningLoopError": "automatosx.api",
    "Workflow": "automatosx.api",
    "load_workflow": "automatosx.api",
    "run_workflow": "automatosx.api",
    "run_workflow_async": "automatosx.api",
    "Client": "automatosx.api",
    "Checkpoint": "automatosx.api",
    "Event": "automatosx.api",
    "ExecutionResult": "automatosx.api",
    "PendingApproval": "automatosx.api",
    "RunSummary": "automatosx.api",
    "StepStatus": "automatosx.api",
    "WorkflowSummary": "automatosx.api",
}
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
    "__version__",
    "load_workflow",
    "run_workflow",
    "run_workflow_async",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'automatosx' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
