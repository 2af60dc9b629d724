"""Sample workflows and executions written through the store API, for the store tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from automatosx.definition.models import WorkflowDefinition
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.records import ExecutionRecord, Lease, WorkflowRecord

OWNER = "host:1:runner-a"
OTHER = "host:2:runner-b"


def definition(
    name: str = "code-review", version: str = "1.0.0", **extra: Any
) -> WorkflowDefinition:
    data: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": "Multi-agent code review",
        "tags": ["code-review", "security"],
        "steps": [
            {"key": "parse", "agent": "backend", "prompt": "Parse {{filePath}}"},
            {
                "key": "scan",
                "agent": "security",
                "prompt": "Scan {{parse}}",
                "dependencies": ["parse"],
            },
            {
                "key": "report",
                "agent": "writer",
                "prompt": "Report {{scan}}",
                "dependencies": ["parse", "scan"],
                "retryPolicy": {"maxRetries": 2},
            },
        ],
    }
    data.update(extra)
    return WorkflowDefinition.model_validate(data)


def workflow(store: Store, name: str = "code-review", version: str = "1.0.0") -> WorkflowRecord:
    return store.upsert_workflow(definition(name, version))


def execution(
    store: Store,
    workflow_id: str | None = None,
    *,
    owner: str = OWNER,
    lease_seconds: float = 60.0,
    context: dict[str, Any] | None = None,
) -> tuple[ExecutionRecord, Lease]:
    if workflow_id is None:
        workflow_id = workflow(store).id
    return store.create_execution(
        workflow_id=workflow_id,
        context=context if context is not None else {"filePath": "x.py"},
        triggered_by="cli",
        priority=0,
        owner=owner,
        lease_seconds=lease_seconds,
    )


def now() -> float:
    return time.time()


def race(store_url: str, count: int, contender: Callable[[int, Store], None]) -> None:
    """Run `contender(index, store)` in `count` threads released together by a barrier, each
    with a store of its own (a process's connection), opened first and closed after."""
    stores = [open_store(store_url) for _ in range(count)]
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        contender(index, stores[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for opened in stores:
            opened.close()
