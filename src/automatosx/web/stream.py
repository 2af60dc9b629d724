"""`GET /api/v1/executions/{id}/stream`: the audit log as server-sent events (SPEC 10).

Each event is one audit-log entry: `id:` is its event ID and `data:` its `events`
document. A client that reconnects sends `Last-Event-ID` (browsers do by themselves) and
gets exactly the entries after it, none twice, none missed. When the execution has finished
and every entry was sent, a last `event: end` carries its state and the stream closes
(a paused execution keeps its stream open: it may resume). A comment line every
`KEEPALIVE_SECONDS` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from automatosx.views.documents import event_document
from automatosx.web.api_v1 import ONE_ERRORS, PREFIX
from automatosx.web.state import UiState, ui_state

if TYPE_CHECKING:
    from automatosx.store.records import EventRecord

KEEPALIVE_SECONDS = 15.0
BATCH = 500
TERMINAL = frozenset({"completed", "failed", "cancelled"})

router = APIRouter(prefix=PREFIX, tags=["api"])


@router.get(
    "/executions/{id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The audit log, live."},
        **ONE_ERRORS,
    },
)
async def stream_events(
    request: Request,
    ui: Annotated[UiState, Depends(ui_state)],
    id: str,
    last_event_id: Annotated[str, Header(max_length=20, pattern=r"^[0-9]*$")] = "",
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> StreamingResponse:
    """The execution's audit log, then each new entry as it is committed."""
    execution = await asyncio.to_thread(ui.store.get_execution, id)
    start = int(last_event_id) if last_event_id else after  # the header wins (a reconnect)
    return StreamingResponse(
        _entries(request, ui, execution.id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _message(event: EventRecord) -> str:
    return f"id: {event.id}\ndata: {json.dumps(event_document(event))}\n\n"


async def _entries(
    request: Request, ui: UiState, execution_id: str, after: int
) -> AsyncIterator[str]:
    store = ui.store
    yield "retry: 1000\n\n"
    while True:
        seen = ui.feed.latest
        events = await asyncio.to_thread(
            store.list_events, execution_id, after_id=after, limit=BATCH
        )
        for event in events:
            after = event.id
            yield _message(event)
        if events:
            continue  # read on until the log is drained
        execution = await asyncio.to_thread(store.get_execution, execution_id)
        if execution.state in TERMINAL:
            # Its last entries may have committed between the read above and this one.
            for event in await asyncio.to_thread(store.list_events, execution_id, after_id=after):
                yield _message(event)
            end = {"executionId": execution_id, "state": execution.state}
            yield f"event: end\ndata: {json.dumps(end)}\n\n"
            return
        if await request.is_disconnected():
            return
        if not await ui.feed.wait(seen, KEEPALIVE_SECONDS):
            yield ": keepalive\n\n"
