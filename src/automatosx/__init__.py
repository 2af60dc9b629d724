"""AutomatosX: a durable, declarative orchestrator for multi-agent AI workflows.

Kept import-light on purpose: `ax --version` must not pay for pydantic, Rich or a database
driver, nor even for `typing` and `dataclasses` (~10 ms each): `StepError` is loaded on first
access. Import from the sub-packages for anything else.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from automatosx.errors import StepError

__version__ = "0.1.0"
__all__ = ["StepError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "StepError":
        from automatosx.errors import StepError

        return StepError
    raise AttributeError(f"module 'automatosx' has no attribute {name!r}")
