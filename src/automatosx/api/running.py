"""Running workflows from Python: `run_workflow` and `run_workflow_async`.

The same path as `ax workflow run`: prepare (agents, providers, context checked; every
problem a `WorkflowValidationError`), `runtime.control.start_execution`, the engine's
runner, and the result read back from the store through the status read model. A failed,
cancelled or paused execution is a result with that `state`, not an exception.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatosx.api.errors import refuse_running_loop
from automatosx.api.results import ExecutionResult
from automatosx.api.workflow import Workflow, as_workflow
from automatosx.errors import WorkflowValidationError

if TYPE_CHECKING:
    from automatosx.agents.in_memory import CallableAgents
    from automatosx.definition.models import WorkflowDefinition
    from automatosx.definition.subworkflows import Subworkflow
    from automatosx.runtime.cache_policy import CacheMode
    from automatosx.runtime.engine import CommitObserver, ExecutionOutcome, ExecutionRunner
    from automatosx.runtime.preparation import PreparedWorkflow
    from automatosx.store.base import Store
    from automatosx.store.records import ExecutionRecord

AgentCallables = Mapping[str, Callable[..., Any]]
WorkflowLike = Workflow | Mapping[str, Any] | str | os.PathLike[str]
Database = str | os.PathLike[str] | None


def run_workflow(
    workflow: WorkflowLike,
    context: Mapping[str, Any] | None = None,
    *,
    agents: AgentCallables | None = None,
    db: Database = None,
    workdir: str | os.PathLike[str] | None = None,
    triggered_by: str = "api",
    priority: int = 0,
    cache: CacheMode = "use",
) -> ExecutionResult:
    """Run a workflow to its end in this thread and return its status.

    `workflow`: a `Workflow`, a dict, or a file path. `context`: the values its templates
    name. `agents`: callables that serve agents by name for this run (sync or async, called
    as the `python` provider calls a function). `db`: a SQLite file or a `postgresql://`
    URL (default: `AX_DB`, else `.automatosx/ax.db`). `workdir`: where steps run (default:
    the current directory). `cache`: "use", "off" or "refresh" the result cache.

    Raises `WorkflowValidationError` before anything runs; `RunningLoopError` when called
    from a running event loop (use `run_workflow_async` there). Ctrl-C cancels the run
    cleanly when called from the main thread.
    """
    refuse_running_loop("run_workflow", "automatosx.run_workflow_async")
    values = dict(context or {})
    prepared = prepare_run(
        as_workflow(workflow), values, agents=_callables(agents), workdir=workdir
    )
    with _opened(db) as store:
        runner = start_run(
            store, prepared, values, triggered_by=triggered_by, priority=priority, cache=cache
        )
        drive(runner)
        return execution_result(store, runner.execution_id)


async def run_workflow_async(
    workflow: WorkflowLike,
    context: Mapping[str, Any] | None = None,
    *,
    agents: AgentCallables | None = None,
    db: Database = None,
    workdir: str | os.PathLike[str] | None = None,
    triggered_by: str = "api",
    priority: int = 0,
    cache: CacheMode = "use",
) -> ExecutionResult:
    """`run_workflow` on the running event loop: `await` it from async code. Cancelling
    the awaiting task cancels the execution (running steps are killed, state `cancelled`)
    before the cancellation propagates."""
    values = dict(context or {})
    prepared = prepare_run(
        as_workflow(workflow), values, agents=_callables(agents), workdir=workdir
    )
    with _opened(db) as store:
        runner = start_run(
            store, prepared, values, triggered_by=triggered_by, priority=priority, cache=cache
        )
        await run_to_end(runner)
        return execution_result(store, runner.execution_id)


# ---- shared with the CLI and the Client ----


def prepare_run(
    workflow: Workflow,
    context: dict[str, Any],
    *,
    agents: CallableAgents | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> PreparedWorkflow:
    """Everything checked before an execution exists (agents, providers, `env`, context):
    every problem in one `WorkflowValidationError`, naming the workflow's file."""
    from automatosx.runtime.context import check_context
    from automatosx.settings import otel_endpoint

    otel_endpoint()  # a trace that could not be sent is refused now, not found out at the end

    try:
        prepared = prepare(
            workflow.definition,
            workdir=Path(workdir) if workdir is not None else None,
            subworkflows=workflow.subworkflows,
            agents=agents,
        )
    except WorkflowValidationError as exc:  # name the file, as `validate` does
        raise WorkflowValidationError(exc.issues, source=exc.source or workflow.source) from None
    _check_json(context)
    check_context(workflow.definition, context)
    return prepared


def _check_json(context: dict[str, Any]) -> None:
    """The context is stored (and given to agents) as JSON: refuse what is not, up front."""
    import json

    from automatosx.errors import ValidationIssue

    try:
        json.dumps(context, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WorkflowValidationError(
            [ValidationIssue("context", f"the context must be JSON data: {exc}")]
        ) from None


def start_run(
    store: Store,
    prepared: PreparedWorkflow,
    context: dict[str, Any],
    *,
    triggered_by: str = "api",
    priority: int = 0,
    cache: CacheMode = "use",
    on_commit: CommitObserver | None = None,
) -> ExecutionRunner:
    """Record a new execution of a prepared workflow; the runner that drives it is
    returned, not yet running."""
    from automatosx.runtime.control import start_execution

    return start_execution(
        store,
        prepared,
        context=context,
        triggered_by=triggered_by,
        priority=priority,
        on_commit=on_commit,
        cache=cache,
    )


def resume_run(
    store: Store,
    id_or_prefix: str,
    *,
    agents: CallableAgents | None = None,
    cache: CacheMode = "use",
    on_commit: CommitObserver | None = None,
) -> ExecutionRunner:
    """Take over a paused or orphaned execution (`runtime.control.resume_execution`), with
    `agents` serving agents by name from memory for what runs from now on."""
    from automatosx.runtime.control import resume_execution
    from automatosx.settings import otel_endpoint

    otel_endpoint()  # as `prepare_run`: before the execution is taken over

    return resume_execution(
        store,
        id_or_prefix,
        prepare=partial(prepare, agents=agents),
        on_commit=on_commit,
        cache=cache,
    )


def requeue_if_submitted(store: Store, id_or_prefix: str) -> ExecutionRecord | None:
    """`resume` of an execution submitted to the workers: it goes back to them (queued
    again), and its record is returned; None for any other execution (resume it here)."""
    from automatosx.runtime.control import requeue_submitted

    execution = store.get_execution(id_or_prefix)
    if execution.queue_name is None:
        return None
    return requeue_submitted(store, execution.id)


def wait_until_ended(store: Store, execution_id: str, poll_s: float = 0.1) -> None:
    """Until the execution ends or pauses (a submitted one, run by the workers)."""
    import time

    from automatosx.runtime.engine import EXIT_CODES

    while store.get_execution(execution_id).state not in EXIT_CODES:
        time.sleep(poll_s)


def prepare(
    definition: WorkflowDefinition,
    *,
    workdir: Path | None = None,
    subworkflows: Mapping[str, Subworkflow] | None = None,
    agents: CallableAgents | None = None,
) -> PreparedWorkflow:
    """`runtime.preparation.prepare_workflow`, with the given callables as `python` agents
    of the workflow (see `agents.in_memory`)."""
    from automatosx.runtime.preparation import prepare_workflow

    router = None
    if agents:
        from automatosx.agents.registry import AgentRegistry

        where = workdir or Path.cwd()
        definition = definition.model_copy(update={"agents": agents.agents(definition.agents)})
        registry = AgentRegistry.load(workdir=where, inline=definition.agents)
        router = agents.router(registry, where)
    return prepare_workflow(definition, workdir=workdir, router=router, subworkflows=subworkflows)


def drive(runner: ExecutionRunner) -> ExecutionOutcome:
    """Run the execution on a fresh event loop; in the main thread SIGINT and SIGTERM
    cancel it cleanly (the handlers that were there before are put back after)."""
    import asyncio  # here: importing it costs every `ax` command ~60 ms

    async def main() -> ExecutionOutcome:
        with _cancel_on_signals(runner):
            outcome = await runner.run()
            await send_trace(runner)
            return outcome

    return asyncio.run(main())


def drive_all(
    runners: Sequence[ExecutionRunner],
    on_end: Callable[[ExecutionRunner, ExecutionOutcome | BaseException], None],
) -> None:
    """Run several executions side by side on one fresh event loop (`recover`): one that
    waits (an approval gate, a long step) holds up none of the others. `on_end` hears of
    each as it ends, with its outcome or what stopped it; in the main thread SIGINT and
    SIGTERM cancel them all."""
    import asyncio

    async def one(runner: ExecutionRunner) -> None:
        try:
            outcome: ExecutionOutcome | BaseException = await runner.run()
        except Exception as exc:  # this one stopped (its lease was taken, ...); not the rest
            outcome = exc
        else:
            await send_trace(runner)
        on_end(runner, outcome)

    async def main() -> None:
        with _cancel_on_signals(*runners):
            await asyncio.gather(*(one(runner) for runner in runners))

    asyncio.run(main())


async def run_to_end(runner: ExecutionRunner) -> ExecutionOutcome:
    """Run the execution on the running loop; if the awaiting task is cancelled, the
    execution is cancelled (and ends) before the cancellation goes on."""
    import asyncio

    task = asyncio.ensure_future(runner.run())
    try:
        outcome = await asyncio.shield(task)
        await send_trace(runner)
        return outcome
    except asyncio.CancelledError:
        if not task.done():
            runner.request_cancel("cancelled: the Python task awaiting it was cancelled")
            await asyncio.wait([task])
        raise


async def send_trace(runner: ExecutionRunner) -> None:
    """The execution's trace to `AX_OTEL_ENDPOINT`, when that is set and the execution has
    ended (`telemetry.otel`, imported only then), from a thread: the loop goes on meanwhile
    (`recover`'s other executions, the caller's own tasks). It never fails the run."""
    await send_ended_trace(runner.store.store, runner.execution_id)


async def send_ended_trace(store: Store, execution_id: str) -> None:
    """`send_trace` for an execution the workers' turns ended (no runner holds it)."""
    from automatosx.settings import otel_endpoint

    endpoint = otel_endpoint()
    if endpoint is None:
        return
    import asyncio

    await asyncio.to_thread(_send_trace, store, execution_id, endpoint)


def _send_trace(store: Store, execution_id: str, endpoint: str) -> None:
    from automatosx.telemetry.otel import export_ended

    export_ended(store, execution_id, endpoint)


def execution_result(store: Store, execution_id: str) -> ExecutionResult:
    """The status document of an execution, as a typed result."""
    from automatosx.views.execution import execution_document

    return ExecutionResult.from_document(
        execution_document(store, store.get_execution(execution_id))
    )


@contextmanager
def _cancel_on_signals(*runners: ExecutionRunner) -> Iterator[None]:
    import asyncio

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def cancel_all(reason: str) -> None:
        for runner in runners:
            runner.request_cancel(reason)

    for sig in signals:
        loop.add_signal_handler(sig, cancel_all, f"interrupted by {sig.name}")
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:
                signal.signal(sig, handler)


@contextmanager
def _opened(db: Database, *, create: bool = True) -> Iterator[Store]:
    from automatosx.store import opened_store

    with opened_store(None if db is None else os.fspath(db), create=create) as store:
        yield store


def _callables(agents: AgentCallables | None) -> CallableAgents | None:
    if not agents:
        return None
    from automatosx.agents.in_memory import CallableAgents

    return CallableAgents(agents)
