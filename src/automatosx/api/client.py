"""`Client`: executions in a store, read and steered from any process.

Each method does what the `ax workflow` command of the same purpose does, through the same
functions, and returns the data that command prints with `--format json` as typed objects
(`ExecutionResult`, `RunSummary`, `Event`, ...; `.to_dict()` gives the JSON). Readers never
create a database file. Errors are the CLI's: `NotFoundError` (unknown ID or step),
`StateConflictError` (the execution's state forbids it), both `AxError`s.

`submit` (queueing a run for workers, SPEC section 9) is not here yet: it arrives with the
workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from automatosx.api.errors import refuse_running_loop
from automatosx.api.results import (
    Checkpoint,
    Event,
    ExecutionResult,
    PendingApproval,
    RunSummary,
    WorkflowSummary,
)
from automatosx.api.running import (
    AgentCallables,
    WorkflowLike,
    _callables,
    drive,
    execution_result,
    requeue_if_submitted,
    resume_run,
    run_to_end,
    run_workflow,
    run_workflow_async,
    wait_until_ended,
)
from automatosx.views.timestamps import DEFAULT_STATS_SINCE

if TYPE_CHECKING:
    from automatosx.runtime.cache_policy import CacheMode
    from automatosx.store.base import Store
    from automatosx.store.records import ApprovalDecision


class Client:
    """Executions in one store: `db` is a SQLite file or a `postgresql://` URL (default:
    `AX_DB` as it is now, else `.automatosx/ax.db` under the current directory). An
    execution ID may be given in full or as a unique prefix of at least 8 characters."""

    def __init__(self, db: str | os.PathLike[str] | None = None) -> None:
        from automatosx.store.open import resolve_location

        self.db: str = resolve_location(None if db is None else os.fspath(db))

    def __repr__(self) -> str:
        return f"Client(db={self.db!r})"

    # ---- reading ----

    def executions(self, limit: int = 20, *, workflow: str | None = None) -> list[RunSummary]:
        """Recent executions, newest first (`ax workflow runs`); `workflow`: only its runs
        (an unknown name is `NotFoundError`)."""
        from automatosx.views.documents import run_document

        with self._store(create=False) as store:
            if workflow is not None:
                store.get_workflow(workflow)
            found = store.list_executions(workflow_name=workflow, limit=limit)
            return [RunSummary.from_document(run_document(e)) for e in found]

    def status(self, id: str) -> ExecutionResult:
        """One execution, every step's latest attempt and the outputs so far
        (`ax workflow status`)."""
        with self._store(create=False) as store:
            return execution_result(store, store.get_execution(id).id)

    def events(self, id: str) -> list[Event]:
        """The execution's audit log, in order (`ax workflow events`)."""
        from automatosx.views.documents import event_document

        with self._store(create=False) as store:
            execution = store.get_execution(id)
            return [Event.from_document(event_document(e)) for e in store.list_events(execution.id)]

    def checkpoints(self, id: str, limit: int | None = None) -> list[Checkpoint]:
        """The execution's checkpoints, newest first (`ax workflow checkpoints`)."""
        from automatosx.views.documents import checkpoint_document

        with self._store(create=False) as store:
            execution = store.get_execution(id)
            every = store.list_checkpoints(execution.id)
        shown = every if limit is None else every[:limit]
        return [Checkpoint.from_document(checkpoint_document(c)) for c in shown]

    def output(self, id: str, step: str) -> Any:
        """One completed step's output (`ax workflow output`): text, or a JSON value."""
        from automatosx.views.execution import step_output

        with self._store(create=False) as store:
            return step_output(store, store.get_execution(id), step)

    def workflows(self, search: str | None = None) -> list[WorkflowSummary]:
        """Stored workflows with their record (`ax workflow list [--search]`)."""
        from automatosx.views.documents import workflow_document

        with self._store(create=False) as store:
            found = store.list_workflows() if search is None else store.search_workflows(search)
        return [WorkflowSummary.from_document(workflow_document(w)) for w in found]

    def pending(self) -> list[PendingApproval]:
        """Approval steps waiting for a decision, across executions (`ax workflow pending`)."""
        from automatosx.views.approvals import pending_document

        with self._store(create=False) as store:
            waiting = store.pending_approvals()
        return [PendingApproval.from_document(pending_document(p)) for p in waiting]

    def stats(
        self, since: str | datetime = DEFAULT_STATS_SINCE, *, workflow: str | None = None
    ) -> dict[str, Any]:
        """Success rates, durations, retries and errors of the executions started since
        then (`ax workflow stats`): `since` an age as the CLI takes it ("30s", "15m",
        "12h", "7d", "2w") or a `datetime`; `workflow`: only its executions (an unknown
        name is `NotFoundError`). The JSON document the CLI prints with `--format json`,
        as a plain dict (see docs/analytics.md for each figure)."""
        from automatosx.views.stats import stats_document
        from automatosx.views.timestamps import parse_age

        if isinstance(since, datetime):
            cutoff = since.timestamp()
        else:
            cutoff = time.time() - parse_age(since)
        with self._store(create=False) as store:
            return stats_document(store, since=cutoff, workflow=workflow)

    # ---- running ----

    def run(
        self,
        workflow: WorkflowLike,
        context: Mapping[str, Any] | None = None,
        *,
        agents: AgentCallables | None = None,
        workdir: str | os.PathLike[str] | None = None,
        triggered_by: str = "api",
        priority: int = 0,
        cache: CacheMode = "use",
    ) -> ExecutionResult:
        """`run_workflow` on this client's store (from a running event loop: `run_async`)."""
        refuse_running_loop("Client.run", "Client.run_async")
        return run_workflow(
            workflow, context, agents=agents, db=self.db, workdir=workdir,
            triggered_by=triggered_by, priority=priority, cache=cache,
        )  # fmt: skip

    async def run_async(
        self,
        workflow: WorkflowLike,
        context: Mapping[str, Any] | None = None,
        *,
        agents: AgentCallables | None = None,
        workdir: str | os.PathLike[str] | None = None,
        triggered_by: str = "api",
        priority: int = 0,
        cache: CacheMode = "use",
    ) -> ExecutionResult:
        """`run_workflow_async` on this client's store."""
        return await run_workflow_async(
            workflow, context, agents=agents, db=self.db, workdir=workdir,
            triggered_by=triggered_by, priority=priority, cache=cache,
        )  # fmt: skip

    def resume(
        self, id: str, *, agents: AgentCallables | None = None, cache: CacheMode = "use"
    ) -> ExecutionResult:
        """Continue a paused execution, or one whose runner died, in this thread until it
        ends again (`ax workflow resume`): completed steps are not run again. `agents`:
        callables for agents that were given in code when it started (they are not
        stored). Refused (`StateConflictError`) while its runner is alive."""
        refuse_running_loop("Client.resume", "Client.resume_async")
        with self._store(create=False) as store:
            submitted = requeue_if_submitted(store, id)
            if submitted is not None:  # the workers run it: wait for them
                wait_until_ended(store, submitted.id)
                return execution_result(store, submitted.id)
            runner = resume_run(store, id, agents=_callables(agents), cache=cache)
            drive(runner)
            return execution_result(store, runner.execution_id)

    async def resume_async(
        self, id: str, *, agents: AgentCallables | None = None, cache: CacheMode = "use"
    ) -> ExecutionResult:
        """`resume` on the running event loop."""
        with self._store(create=False) as store:
            submitted = requeue_if_submitted(store, id)
            if submitted is not None:  # the workers run it: wait for them
                import asyncio

                await asyncio.to_thread(wait_until_ended, store, submitted.id)
                return execution_result(store, submitted.id)
            runner = resume_run(store, id, agents=_callables(agents), cache=cache)
            await run_to_end(runner)
            return execution_result(store, runner.execution_id)

    # ---- steering ----

    def pause(self, id: str) -> ExecutionResult:
        """Ask the execution to pause (`ax workflow pause`): running steps finish, nothing
        new starts. Returns its status now: `paused`, or still running while its runner
        lets the running steps finish."""
        from automatosx.runtime.control import pause_execution

        with self._store(create=False) as store:
            execution = pause_execution(store, id)
            return execution_result(store, execution.id)

    def cancel(self, id: str) -> ExecutionResult:
        """Cancel the execution (`ax workflow cancel`): running steps are killed; waits
        (up to 10 s) for a live runner to stop, and returns its status then. Called from a
        running event loop it does not wait (the runner may be on that very loop, which
        waiting would block): the status it returns may still be running."""
        from automatosx.runtime.control import cancel_execution

        wait_s = 0.0 if _in_running_loop() else 10.0
        with self._store(create=False) as store:
            execution = cancel_execution(store, id, wait_s=wait_s)
            return execution_result(store, execution.id)

    def approve(
        self, id: str, step: str, comment: str | None = None, *, by: str | None = None
    ) -> ExecutionResult:
        """Approve a waiting approval step (`ax workflow approve`): it completes and its
        dependents run. `by`: who decides (default: `AX_USER`, else the login name).
        The first decision wins; a later one is `StateConflictError`."""
        return self._decide(id, step, "approved", comment, by)

    def reject(
        self, id: str, step: str, comment: str | None = None, *, by: str | None = None
    ) -> ExecutionResult:
        """Reject a waiting approval step (`ax workflow reject`): it fails with kind
        `rejected`."""
        return self._decide(id, step, "rejected", comment, by)

    def _decide(
        self, id: str, step: str, decision: ApprovalDecision, comment: str | None, by: str | None
    ) -> ExecutionResult:
        from automatosx.runtime.approvals import decide

        who = by or decider()
        with self._store(create=False) as store:
            execution, _ = decide(
                store, id, step, decision, by=who, comment=comment, now=time.time()
            )
            return execution_result(store, execution.id)

    @contextmanager
    def _store(self, *, create: bool) -> Iterator[Store]:
        from automatosx.store import opened_store

        with opened_store(self.db, create=create) as store:
            yield store


def _in_running_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def decider() -> str:
    """Who decides an approval: `AX_USER`, else the login name."""
    import getpass

    from automatosx import settings
    from automatosx.errors import AxError

    named = settings.user()
    if named:
        return named
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        raise AxError("cannot tell who decides: set AX_USER to your name") from None
