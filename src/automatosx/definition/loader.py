"""Reading a workflow file: bytes -> text -> plain document -> validated definition.

Every failure, whatever the input bytes, is a `WorkflowValidationError` naming the file and,
where the parser knows it, the line and column: the CLI turns it into `error:` lines and exit
code 2. Size, nesting depth and alias expansion are bounded before anything big is built.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from automatosx.errors import ValidationIssue, WorkflowValidationError

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
FileFormat = Literal["yaml", "json"]
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer


def load_workflow(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> WorkflowDefinition:
    """Read and validate the workflow file at `path`."""
    return parse_workflow(
        read_file(path, max_bytes=max_bytes), source=str(path), max_bytes=max_bytes
    )


def read_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, refusing to read more than `max_bytes` of them.

    Only a regular file is read. The file is opened non-blocking and checked before any
    read: opening a FIFO waits for a writer and reading a terminal or `/dev/zero` never
    ends, so `ax workflow run some-fifo` used to hang instead of answering.
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        _fail(source, "no such file")
    except IsADirectoryError:
        _fail(source, "is a directory, not a file")
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
        with contextlib.suppress(OSError):  # a socket cannot be opened at all: say so
            problem = _special_file(os.stat(path).st_mode) or problem
        _fail(source, problem)
    try:
        refusal = _special_file(os.fstat(fd).st_mode)
        if refusal:
            _fail(source, refusal)
        if _NONBLOCK:
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        _fail(source, f"cannot read the file: {exc.strerror or exc}")
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:
        _fail(source, _too_big(max_bytes))
    return data


def parse_workflow(
    data: bytes | str,
    *,
    source: str,
    fmt: FileFormat | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> WorkflowDefinition:
    """Validate a workflow from its bytes or text; `fmt=None` picks YAML or JSON from the
    extension of `source`, else from the content."""
    from automatosx.definition.validation import is_number, validate_document

    document = parse_document(data, source=source, fmt=fmt, max_bytes=max_bytes)
    written = None
    if isinstance(document, dict) and is_number(document.get("version")):
        written = _written_number(data, "version", document["version"])
    return validate_document(document, source=source, written_version=written)


def parse_document(
    data: bytes | str,
    *,
    source: str,
    fmt: FileFormat | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """The plain data (dicts, lists, scalars) of a workflow file, not yet validated."""
    try:
        text = _decode(data, source, max_bytes)
        chosen = fmt or _format_of(source, text)
        if chosen == "json":
            try:
                return _load_json(text, source)
            except WorkflowValidationError:
                if fmt is None and _extension(source) not in (".json",):
                    return _load_yaml(text, source)  # a YAML flow map also starts with "{"
                raise
        return _load_yaml(text, source)
    except WorkflowValidationError:
        raise
    except Exception as exc:  # the promise: no other exception escapes, whatever the bytes
        _fail(source, f"cannot read the file ({type(exc).__name__}: {exc})")


def _decode(data: bytes | str, source: str, max_bytes: int) -> str:
    if isinstance(data, str):
        if len(data) > max_bytes and len(data.encode("utf-8", "surrogatepass")) > max_bytes:
            _fail(source, _too_big(max_bytes))
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            _fail(source, f"not valid text: unpaired surrogate at character {exc.start}")
        text = data
    else:
        if len(data) > max_bytes:
            _fail(source, _too_big(max_bytes))
        if b"\x00" in data:
            _fail(source, "binary content (NUL bytes): workflow files are UTF-8 text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            _fail(
                source,
                f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at line {line} "
                f"(offset {exc.start}); workflow files must be UTF-8",
            )
    if "\x00" in text:
        _fail(source, "binary content (NUL bytes): workflow files are UTF-8 text")
    return text.removeprefix("\ufeff")


def _extension(source: str) -> str:
    return Path(source).suffix.lower()


def _format_of(source: str, text: str) -> FileFormat:
    extension = _extension(source)
    if extension == ".json":
        return "json"
    if extension in (".yaml", ".yml"):
        return "yaml"
    return "json" if text.lstrip()[:1] in ("{", "[") else "yaml"


def _load_yaml(text: str, source: str) -> Any:
    import yaml

    from automatosx.definition.safe_yaml import YamlLimitError, load_yaml

    try:
        return load_yaml(text, max_depth=MAX_DEPTH)
    except YamlLimitError as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
        _fail(source, where + exc.message)
    except yaml.MarkedYAMLError as exc:
        _fail(source, _describe_yaml_error(exc))
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        _fail(
            source,
            f"line {line}, column {column}: {exc.reason} (character #x{exc.character:04x})"
            if isinstance(exc.character, int)
            else f"line {line}: {exc.reason}",
        )
    except yaml.YAMLError as exc:
        _fail(source, "invalid YAML: " + " ".join(str(exc).split()))


def _describe_yaml_error(exc: Any) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    text = f"invalid YAML: {problem}"
    if mark is not None:
        text = f"line {mark.line + 1}, column {mark.column + 1}: {text}"
    if exc.context and exc.problem and exc.context_mark is not None:
        context_mark = exc.context_mark
        text += (
            f" ({exc.context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        )
    return text


def _load_json(text: str, source: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    def no_constants(name: str) -> NoReturn:
        raise ValueError(f"{name} is not a finite number")

    try:
        document = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        _fail(source, f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}")
    except _DuplicateKey as exc:
        _fail(source, f"duplicate key '{exc.key}' in a JSON object")
    except RecursionError:
        _fail(source, f"nesting is deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        _fail(source, f"invalid JSON: {exc}")
    if _depth(document) > MAX_DEPTH:
        _fail(source, f"nesting is deeper than {MAX_DEPTH} levels")
    return document


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _depth(document: Any) -> int:
    """How deeply lists and objects nest (a scalar is 0), without recursion. Only containers
    go on the stack (json.loads makes plain dicts and lists): a 10,000-step file has ~50,000
    scalars, and stacking each of them was a tenth of `ax workflow validate`."""
    containers = (dict, list)
    if type(document) not in containers:
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        for item in value.values() if type(value) is dict else value:
            if type(item) in containers:
                stack.append((item, depth + 1))
    return deepest


def _special_file(mode: int) -> str | None:
    """Why a path of this `mode` is not read as a workflow, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    kind = "a special file"
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            kind = name
    return f"is {kind}, not a regular file"


def _too_big(max_bytes: int) -> str:
    return f"the file is larger than the limit of {max_bytes} bytes"


_KEY_AND_NUMBER = r"""(?:^|[{,\s])["']?%s["']?[ \t]*:[ \t]*([-+]?\.?[0-9][0-9a-zA-Z_.:+-]*)"""


def _written_number(data: bytes | str, key: str, value: float) -> str | None:
    """How the file spells the number under the top-level `key`: the number alone has lost
    it (`1.10` reads as 1.1). The first `key: <number>` whose text YAML reads as `value`
    wins (JSON numbers read the same in YAML); None when there is none."""
    from automatosx.definition.safe_yaml import load_yaml

    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for match in re.finditer(_KEY_AND_NUMBER % re.escape(key), text, re.MULTILINE):
        candidate = match.group(1).rstrip(",")
        with contextlib.suppress(Exception):  # not a scalar YAML can read: try the next
            if load_yaml(candidate) == value:
                return candidate
    return None


def _fail(source: str, message: str) -> NoReturn:
    raise WorkflowValidationError([ValidationIssue("", message)], source=source)
