"""The execution context: the values `{{name}}` placeholders read (SPEC section 3).

Given on the command line as JSON or `@file.json`; it must be a JSON object, and every
context placeholder of the workflow must be in it before any step starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.templates import context_names
from automatosx.errors import ValidationIssue, WorkflowValidationError

CONTEXT_FILE_MAX_BYTES = 16 * 1024 * 1024


def parse_context(text: str | None) -> dict[str, Any]:
    """`--context` as given: JSON text, `@path` to a JSON file, or nothing (empty context)."""
    if text is None or text == "":
        return {}
    source = "--context"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--context {text}"
        try:
            if path.stat().st_size > CONTEXT_FILE_MAX_BYTES:
                raise _bad(source, f"file is larger than {CONTEXT_FILE_MAX_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad(source, f"cannot read {path}: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise _bad(source, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise _bad(source, "not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise _bad(source, f"must be a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_context(definition: WorkflowDefinition, context: dict[str, Any]) -> None:
    """Every context placeholder has a value, or one error naming each missing one."""
    missing = sorted(context_names(definition) - set(context))
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        raise _bad(
            "context",
            f"missing value for {names} (pass it with --context '{{\"{missing[0]}\": ...}}')",
        )


def _bad(path: str, message: str) -> WorkflowValidationError:
    return WorkflowValidationError([ValidationIssue(path, message)])
