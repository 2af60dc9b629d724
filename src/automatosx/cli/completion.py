"""Shell completion of execution IDs, step keys and workflow names, read from the store.

`ax --install-completion` (Typer) installs a bash, zsh or fish script that runs `ax` with
`_AX_COMPLETE=complete_bash` (or `_zsh`, `_fish`) on every TAB; Typer then calls these
completers for the ID and STEP arguments. A completer runs while someone waits at a
prompt, so it must be fast and silent:

- it never creates a database: a SQLite file that does not exist completes nothing;
- it never prints an error (whatever goes wrong, a bad `AX_DB` or a locked or unreachable
  store, completes nothing) and nothing it does may write to the terminal: stderr is
  silenced for the rest of the completing process, which exits right after;
- it waits at most `DEADLINE_S` for the store (an unreachable PostgreSQL server takes
  seconds to refuse), reading the newest `MAX_EXECUTIONS` executions at most.

Each candidate carries a short description (workflow, state, age; a step's state), which
zsh and fish show next to it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from automatosx.store.base import Store

DEADLINE_S = 1.0
MAX_EXECUTIONS = 200
MIN_PREFIX = 8  # an ID prefix the store resolves (`get_execution`), SPEC section 7
Candidates = list[tuple[str, str]]


def complete_execution_id(incomplete: str) -> Candidates:
    """Execution IDs starting with what was typed, newest first, each described by its
    workflow, state and age. Beyond the newest MAX_EXECUTIONS, a typed prefix of 8+
    characters still completes to the one execution it names."""

    def lookup(store: Store) -> Candidates:
        from automatosx.cli.output import relative_time
        from automatosx.errors import NotFoundError

        typed = incomplete.strip().lower()
        executions = [
            e for e in store.list_executions(limit=MAX_EXECUTIONS) if e.id.startswith(typed)
        ]
        if not executions and len(typed) >= MIN_PREFIX:
            try:
                executions = [store.get_execution(typed)]
            except NotFoundError:  # none, or ambiguous: nothing to offer
                return []
        return [
            (e.id, f"{e.workflow_name} {e.state} {relative_time(e.created_at)}") for e in executions
        ]

    return _from_store(lookup)


def complete_step_key(ctx: typer.Context, incomplete: str) -> Candidates:
    """The step keys of the execution named by the ID argument before it, in the file's
    order, each with its state. A forEach step's items (`review[3]`) are offered once what
    was typed reaches the bracket (`review[`), so a fan-out of a thousand items does not
    flood the list."""
    given = ctx.params.get("id") or ctx.params.get("execution_id")
    if not isinstance(given, str) or not given.strip():
        return []

    def lookup(store: Store) -> Candidates:
        instances = store.list_instances(store.get_execution(given).id)
        items = "[" in incomplete
        return [
            (i.key, i.state)
            for i in instances
            if i.key.startswith(incomplete) and (items or i.parent_key is None)
        ]

    return _from_store(lookup)


def complete_workflow_name(incomplete: str) -> Candidates:
    """Stored workflow names starting with what was typed, each with its newest version."""

    def lookup(store: Store) -> Candidates:
        from automatosx.store.workflow_sql import version_order

        newest: dict[str, str] = {}
        for workflow in sorted(store.list_workflows(), key=version_order):
            if workflow.name.startswith(incomplete):
                newest[workflow.name] = workflow.version
        return sorted(newest.items())

    return _from_store(lookup)


def _from_store(lookup: Callable[[Store], Candidates]) -> Candidates:
    """`lookup` run on the store in a daemon thread, given up after DEADLINE_S; [] if the
    database does not exist or anything fails."""
    _silence_stderr()
    found: list[Candidates] = []

    def work() -> None:
        store = _existing_store()
        if store is None:
            return
        try:
            found.append(lookup(store))
        finally:
            store.close()

    worker = threading.Thread(target=_quietly(work), name="ax-completion", daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    return found[0] if found else []


def _existing_store() -> Store | None:
    """The store `AX_DB` names, if it exists; never creates one."""
    from automatosx.settings import database_location, is_postgres_url
    from automatosx.store import open_store

    location = database_location()
    if not is_postgres_url(location) and (location == ":memory:" or not os.path.isfile(location)):
        return None
    return open_store(location)


def _quietly(function: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            function()
        except Exception:  # completion offers nothing rather than an error on the prompt
            return

    return run


def _silence_stderr() -> None:
    """Nothing but candidates may reach the terminal while someone is typing: a warning a
    library logs, a thread's traceback at exit. Only ever called while completing."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 2)  # file descriptor 2 itself: C libraries (libpq) write there too
        os.close(quiet)
