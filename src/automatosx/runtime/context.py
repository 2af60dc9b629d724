"""The execution context: the values `{{name}}` placeholders read (SPEC section 3).

Given on the command line as JSON or `@file.json`; it must be a JSON object, and every
context placeholder of the workflow must be in it before any step starts. `--context-file
NAME=PATH` adds the text of a file under the working directory as the value NAME, so a
prompt can quote the code it is about (`{{code}}`): the text is stored with the execution's
context like any other value, and a resume reads the same text, not the file again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.templates import context_names
from automatosx.errors import ValidationIssue, WorkflowValidationError

CONTEXT_FILE_MAX_BYTES = 16 * 1024 * 1024
# A prompt is not the place for a larger file: 64 KiB of code is ~16k tokens, already past
# what the embedded model's context holds.
CONTEXT_FILE_VALUE_MAX_BYTES = 64 * 1024
_NAME_RE = re.compile(r"[\w-]+")  # what a placeholder head may be (definition/templates.py)


def parse_context(text: str | None) -> dict[str, Any]:
    """`--context` as given: JSON text, `@path` to a JSON file, or nothing (empty context)."""
    if text is None or text == "":
        return {}
    source = "--context"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--context {text}"
        data = _read_regular_file(path, CONTEXT_FILE_MAX_BYTES, source, shown=str(path))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
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


def read_context_files(
    specs: list[str], context: dict[str, Any], workdir: Path | None = None
) -> dict[str, Any]:
    """`context` with one value per `--context-file NAME=PATH`: the file's text.

    PATH is relative to `workdir` (default: the current directory) and, symlinks resolved,
    must stay inside it; it must be a regular file of at most CONTEXT_FILE_VALUE_MAX_BYTES
    bytes of UTF-8 text without NUL bytes. A NAME given twice, or also in `--context`, is
    refused rather than silently replaced.
    """
    base = (workdir or Path.cwd()).resolve()
    values = dict(context)
    for spec in specs:
        name, sep, raw_path = spec.partition("=")
        name = name.strip()
        if not sep or not raw_path or not _NAME_RE.fullmatch(name):
            raise _bad("--context-file", f"expected NAME=PATH, got {spec!r}")
        source = f"--context-file {name}"
        if name in values:
            given = "twice" if name not in context else "in --context too"
            raise _bad(source, f"{name!r} is given {given}")
        values[name] = _read_text_file(base, raw_path, source)
    return values


def _read_text_file(base: Path, raw_path: str, source: str) -> str:
    try:
        path = (base / Path(raw_path).expanduser()).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, a symlink loop
        raise _bad(source, f"cannot read {raw_path}: {_reason(exc)}") from None
    if not path.is_relative_to(base):
        raise _bad(source, f"{raw_path} is outside the working directory {base}")
    data = _read_regular_file(path, CONTEXT_FILE_VALUE_MAX_BYTES, source, shown=raw_path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(source, f"{raw_path} is not UTF-8 text") from None
    if "\x00" in text:
        raise _bad(source, f"{raw_path} is not text (it holds NUL bytes)")
    return text.removeprefix("\ufeff")


def _read_regular_file(path: Path, limit: int, source: str, *, shown: str) -> bytes:
    """The loader's reader (a regular file only, opened without blocking, at most `limit`
    bytes), its refusal reworded for the option that named the file."""
    from automatosx.definition.loader import read_file

    try:
        return read_file(path, max_bytes=limit)
    except WorkflowValidationError as exc:
        reason = exc.issues[0].message.removeprefix("the file ")
        raise _bad(source, f"cannot read {shown}: {reason}") from None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def check_context(definition: WorkflowDefinition, context: dict[str, Any]) -> None:
    """Every context placeholder has a value, or one error naming each missing one."""
    missing = sorted(context_names(definition) - set(context))
    if missing == ["context"]:  # `{{context.who}}`: CEL's spelling, not the templates'
        raise _bad(
            "context",
            "missing value for {{context}}: templates name a context value directly, as "
            "{{who}} for --context '{\"who\": ...}' (only `if` and `forEach` write context.who)",
        )
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        raise _bad(
            "context",
            f"missing value for {names} (pass it with --context '{{\"{missing[0]}\": ...}}'"
            f" or --context-file {missing[0]}=PATH)",
        )


def _bad(path: str, message: str) -> WorkflowValidationError:
    return WorkflowValidationError([ValidationIssue(path, message)])
