"""Imports every command module so their commands register on the apps."""

from __future__ import annotations

from automatosx.cli import (
    agents_cmd,  # noqa: F401
    cache_cmd,  # noqa: F401
    ui_cmd,  # noqa: F401
    worker_cmd,  # noqa: F401
    workflow_approval,  # noqa: F401
    workflow_define,  # noqa: F401
    workflow_read,  # noqa: F401
    workflow_run,  # noqa: F401
    workflow_stats,  # noqa: F401
    workflow_submit,  # noqa: F401
)
from automatosx.cli.apps import app

__all__ = ["app"]
