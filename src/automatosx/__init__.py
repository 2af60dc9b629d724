"""AutomatosX: a durable, declarative orchestrator for multi-agent AI workflows.

Kept import-light on purpose: `ax --version` must not pay for pydantic, Rich or a database
driver. Import from the sub-packages for anything else.
"""

from automatosx.errors import StepError

__version__ = "0.1.0"
__all__ = ["StepError", "__version__"]
