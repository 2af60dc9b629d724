"""`/executions/{id}`: one execution, whole: its DAG with live states, a Gantt timeline of
its attempts, its steps with tokens and cost, the selected step's attempts (prompt and
output), the gates waiting for a decision, the event log and the checkpoints.

Everything comes from the read model's documents, each read once per request (no query
per step), so a page of 1,000 steps renders in one pass. The page follows the execution's
event stream (`web/static/app.js`); on each change it fetches `/executions/{id}/live`,
which renders the same parts again: the summary as the response, the others as htmx
out-of-band swaps. The selected step (`step`), the event filter (`type`) and the event
page (`after`) are query parameters, so every view of an execution is a link.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from automatosx.errors import AxError
from automatosx.store.approvals import PendingApproval
from automatosx.store.base import Store
from automatosx.store.records import EventType, ExecutionRecord, StepExecutionRecord
from automatosx.views.approvals import pending_document
from automatosx.views.documents import checkpoint_document, event_document
from automatosx.views.execution import execution_document
from automatosx.views.graph import execution_graph_document
from automatosx.web.controls import allowed_actions
from automatosx.web.dag_layout import layout_dag
from automatosx.web.rendering import page, render
from automatosx.web.request_reads import reads_once
from automatosx.web.state import UiState, ui_state
from automatosx.web.step_panel import step_panel
from automatosx.web.svg import dag_svg, timeline_svg
from automatosx.web.timeline import Span, StepTimes, build_timeline

EVENT_PAGE = 100
EVENT_SCAN = 1000  # events read per query while filtering by type
EVENT_SCAN_LIMIT = 20  # queries per page at most: a rare type pages on, it never stalls
CHECKPOINTS_SHOWN = 20
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
DATA_CHARS = 400  # an event's data shown inline, the rest in the API

router = APIRouter(include_in_schema=False)
State = Annotated[UiState, Depends(ui_state)]
StepKey = Annotated[str | None, Query(max_length=200)]
TypeFilter = Annotated[str | None, Query(max_length=40)]
After = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/executions/{id}", response_class=HTMLResponse)
@page
def execution_page(
    request: Request, ui: State, id: str, step: StepKey = None, type: TypeFilter = None,
    after: After = 0,
) -> HTMLResponse:  # fmt: skip
    view = _view(ui, id, step or None, type or None, after)
    return render(request, "execution.html", nav="executions", v=view)


@router.get("/executions/{id}/live", response_class=HTMLResponse)
@page
def execution_live(
    request: Request, ui: State, id: str, step: StepKey = None, type: TypeFilter = None,
    after: After = 0,
) -> HTMLResponse:  # fmt: skip
    """The page's parts again, for the page to swap in when the execution changed."""
    view = _view(ui, id, step or None, type or None, after)
    return render(request, "parts/execution_live.html", v=view)


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    type: str | None
    after: int
    next_after: int | None


def _view(ui: UiState, id: str, step: str | None, type: str | None, after: int) -> dict[str, Any]:
    store = reads_once(ui.store)  # the views share one read of the instances
    if type is not None and type not in EVENT_TYPES:
        raise AxError(f"unknown event type {type!r}: use one of {', '.join(EVENT_TYPES)}")
    watermark = store.latest_event_id()  # first: a change after this read reaches the page
    execution = store.get_execution(id)
    document = execution_document(store, execution)
    graph = execution_graph_document(store, execution)
    attempts = store.list_step_executions(execution.id)
    now = time.time()
    critical = graph["criticalPath"]
    gates = _gates(store, execution)
    query = {k: v for k, v in (("step", step), ("type", type)) if v is not None}
    if after:
        query["after"] = str(after)
    base = f"/executions/{execution.id}"
    layout = layout_dag(graph)
    step_urls = _step_urls(base, query, [*document["steps"], *(n.key for n in layout.nodes)])
    return {
        "id": execution.id,
        "base": base,
        "doc": document,
        "graph_svg": dag_svg(layout, step_urls),
        "step_urls": step_urls,
        "critical": critical,
        "critical_set": frozenset(critical),
        "timeline_svg": timeline_svg(
            build_timeline(
                _step_times(document["steps"], attempts, now),
                now=now,
                critical=critical,
                origin=execution.started_at,
            )
        ),
        "actions": allowed_actions(
            execution.state,
            orphaned=document["orphaned"],
            control_request=execution.control_request,
            steered_by_parent=_steered_by_parent(store, execution),
            read_only=ui.config.read_only,
        ),
        "control_request": execution.control_request,
        "gates": gates,
        "read_only": ui.config.read_only,
        "step": step_panel(store, execution, step, document) if step is not None else None,
        "events": _events(store, execution.id, type, after),
        "event_types": EVENT_TYPES,
        "checkpoints": [
            checkpoint_document(c) for c in store.list_checkpoints(execution.id, CHECKPOINTS_SHOWN)
        ],
        "live_url": f"{base}/live" + (f"?{urlencode(query)}" if query else ""),
        "stream_url": (
            None
            if execution.is_terminal
            else f"/api/v1/executions/{execution.id}/stream?after={watermark}"
        ),
        "query": query,
    }


def _step_urls(base: str, query: dict[str, str], keys: list[str]) -> dict[str, str]:
    """The link to each step's panel, keeping the rest of the view (built once per key,
    not by a template call per box and row: a 1,000-step page has two thousand)."""
    rest = urlencode({k: v for k, v in query.items() if k != "step"})
    suffix = f"&{rest}#step-panel" if rest else "#step-panel"
    return {key: f"{base}?step={quote(key, safe='')}{suffix}" for key in dict.fromkeys(keys)}


def _step_times(
    steps: dict[str, dict[str, Any]], attempts: list[StepExecutionRecord], now: float
) -> list[StepTimes]:
    """Each instance's attempts as spans, in the document's order (the file's). A step
    pending again after an attempt is waiting out its backoff: its gap runs to `now`. A
    forEach step has no attempts of its own: its span runs from its first item's start to
    its last item's end (its items follow it, each on its own row)."""
    spans: dict[str, list[Span]] = {}
    for attempt in attempts:
        if attempt.started_at is None:
            continue
        spans.setdefault(attempt.step_key, []).append(
            Span(attempt.attempt, attempt.state, attempt.started_at, attempt.completed_at)
        )
    items: dict[str, list[Span]] = {}
    for key, found in spans.items():
        parent, bracket, _ = key.partition("[")
        if bracket:
            items.setdefault(parent, []).extend(found)
    times = []
    for key, entry in steps.items():
        state = entry["state"]
        if entry.get("items") is not None:
            times.append(
                StepTimes(key, state, _fan_out_span(state, items.get(key, [])), fan_out=True)
            )
            continue
        own = tuple(spans.get(key, ()))
        waiting = state == "pending" and bool(own)
        times.append(StepTimes(key, state, own, now if waiting else None))
    return times


def _fan_out_span(state: str, items: list[Span]) -> tuple[Span, ...]:
    if not items:
        return ()
    ends = [span.end for span in items]
    finished = state in ("completed", "failed", "cancelled", "skipped") and None not in ends
    end = max(e for e in ends if e is not None) if finished else None
    return (Span(0, state, min(span.start for span in items), end),)


def _gates(store: Store, execution: ExecutionRecord) -> list[dict[str, Any]]:
    """The execution's gates still waiting: the `pending` entries of those undecided, and
    the decided ones the runner has still to apply (it applies them when it resumes)."""
    gates = []
    for approval in store.waiting_approvals(execution.id):
        entry = pending_document(PendingApproval(approval, execution.workflow_name))
        entry["decision"] = approval.decision
        entry["decidedBy"] = approval.decided_by
        gates.append(entry)
    return gates


def _steered_by_parent(store: Store, execution: ExecutionRecord) -> bool:
    if execution.parent_execution_id is None:
        return False
    return not store.get_execution(execution.parent_execution_id).is_terminal


def _events(store: Store, execution_id: str, type: str | None, after: int) -> EventPage:
    """One page of the log after event `after`: the next `EVENT_PAGE` events (of `type`)."""
    kept: list[dict[str, Any]] = []
    cursor = after
    for _ in range(EVENT_SCAN_LIMIT if type else 1):
        batch = store.list_events(
            execution_id, after_id=cursor, limit=EVENT_SCAN if type else EVENT_PAGE + 1
        )
        for event in batch:
            if type is None or event.type == type:
                if len(kept) == EVENT_PAGE:
                    return EventPage(kept, type, after, kept[-1]["id"])
                kept.append(_event_entry(event_document(event)))
            cursor = event.id
        if len(batch) < (EVENT_SCAN if type else EVENT_PAGE + 1):
            return EventPage(kept, type, after, None)
    return EventPage(kept, type, after, cursor)  # scanned enough: page on from there


def _event_entry(document: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(document["data"], ensure_ascii=False, separators=(", ", ": "))
    cut = data if len(data) <= DATA_CHARS else data[: DATA_CHARS - 1] + "…"
    return {**document, "dataText": "" if data == "{}" else cut}
