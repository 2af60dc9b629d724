"""The store as one page request sees it: each execution's step instances read once.

An execution's page asks three views for their documents (status, graph, attempts), and
each reads the execution's instances: on a 1,000-step execution that is most of the
page's time. Within one request the instances do not need reading again (the page shows
one moment), so this wrapper keeps the first read and hands it to the later ones. Records
are frozen, so sharing them is safe. Everything else goes to the store unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from automatosx.store.base import Store
    from automatosx.store.records import StepExecutionRecord, StepInstanceRecord


class ReadsOnce:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._instances: dict[str, list[StepInstanceRecord]] = {}

    def list_instances(self, execution_id: str) -> list[StepInstanceRecord]:
        found = self._instances.get(execution_id)
        if found is None:
            found = self._instances[execution_id] = self._store.list_instances(execution_id)
        return list(found)  # a caller may sort or extend its own list

    def list_step_executions(
        self, execution_id: str, *, instances: Sequence[StepInstanceRecord] | None = None
    ) -> list[StepExecutionRecord]:
        known = self.list_instances(execution_id) if instances is None else instances
        return self._store.list_step_executions(execution_id, instances=known)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def reads_once(store: Store) -> Store:
    """`store` for one request (typed as the store it stands for)."""
    return cast("Store", ReadsOnce(store))
