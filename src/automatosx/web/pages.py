"""The dashboard's pages (SPEC section 10), rendered on the server from the read model's
documents: the executions list, workflows and pending approvals here; one execution in
`pages_execution`, analytics in `pages_analytics`.

Every view's state is in its URL (filters, cursor, selected step), so any view is a link
that can be shared. Lists never load everything: the executions list reads one page of 50
(or `limit`), plus one row to know whether a next page exists, on the store's keyset
cursor, and refreshes itself every 2 s through an htmx fragment of the same query.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from automatosx.errors import AxError
from automatosx.views.approvals import pending_document
from automatosx.views.documents import run_document, workflow_document
from automatosx.web import pages_analytics, pages_execution
from automatosx.web.api_v1 import ExecutionState
from automatosx.web.rendering import page, render
from automatosx.web.state import UiState, ui_state

PAGE_SIZE = 50
EXECUTION_STATES: tuple[str, ...] = get_args(ExecutionState)  # the API's `state` filter's

router = APIRouter(include_in_schema=False)
State = Annotated[UiState, Depends(ui_state)]
Name = Annotated[str | None, Query(max_length=500)]
StateFilter = Annotated[str | None, Query(max_length=40)]
Cursor = Annotated[str | None, Query(max_length=100)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/", response_class=HTMLResponse)
@page
def executions_page(
    request: Request, ui: State, workflow: Name = None, state: StateFilter = None,
    cursor: Cursor = None, limit: Limit = PAGE_SIZE,
) -> HTMLResponse:  # fmt: skip
    """Recent executions, newest first, filtered by workflow and state."""
    listing = _executions(ui, workflow or None, state or None, cursor or None, limit)
    workflows = sorted(w.name for w in ui.store.list_workflows())
    return render(
        request, "executions.html", nav="executions", workflows=workflows,
        states=EXECUTION_STATES, **listing,
    )  # fmt: skip


@router.get("/parts/executions", response_class=HTMLResponse)
@page
def executions_part(
    request: Request, ui: State, workflow: Name = None, state: StateFilter = None,
    cursor: Cursor = None, limit: Limit = PAGE_SIZE,
) -> HTMLResponse:  # fmt: skip
    """The executions table alone: what the list page polls."""
    listing = _executions(ui, workflow or None, state or None, cursor or None, limit)
    return render(request, "parts/runs.html", **listing)


def _executions(
    ui: UiState, workflow: str | None, state: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    if state is not None and state not in EXECUTION_STATES:
        raise AxError(f"unknown state {state!r}: use one of {', '.join(EXECUTION_STATES)}")
    if workflow is not None:
        ui.store.get_workflow(workflow)  # an unknown name is the 404 page, not an empty list
    found = ui.store.list_executions(
        workflow_name=workflow, limit=limit + 1, states=None if state is None else [state],
        before=cursor,
    )  # fmt: skip
    runs = [run_document(e) for e in found[:limit]]
    filters = {k: v for k, v in (("workflow", workflow), ("state", state)) if v is not None}
    if limit != PAGE_SIZE:
        filters["limit"] = str(limit)
    query = {**filters, **({"cursor": cursor} if cursor else {})}
    return {
        "runs": runs,
        "workflow": workflow,
        "state": state,
        "cursor": cursor,
        "first_url": "/?" + urlencode(filters) if cursor else None,
        "next_url": (
            "/?" + urlencode({**filters, "cursor": runs[-1]["executionId"]})
            if len(found) > limit
            else None
        ),
        "part_url": "/parts/executions" + (f"?{urlencode(query)}" if query else ""),
    }


@router.get("/workflows", response_class=HTMLResponse)
@page
def workflows_page(request: Request, ui: State) -> HTMLResponse:
    """Stored workflows with their record (`ax workflow list`)."""
    documents = [workflow_document(w) for w in ui.store.list_workflows()]
    return render(request, "workflows.html", nav="workflows", workflows=documents)


@router.get("/pending", response_class=HTMLResponse)
@page
def pending_page(request: Request, ui: State) -> HTMLResponse:
    """Approval gates waiting for a decision, across executions (`ax workflow pending`)."""
    pending = [pending_document(p) for p in ui.store.pending_approvals()]
    return render(
        request, "pending.html", nav="pending", pending=pending, read_only=ui.config.read_only
    )


@router.get("/parts/pending", response_class=HTMLResponse)
@page
def pending_part(request: Request, ui: State) -> HTMLResponse:
    pending = [pending_document(p) for p in ui.store.pending_approvals()]
    return render(request, "parts/pending.html", pending=pending, read_only=ui.config.read_only)


router.include_router(pages_execution.router)
router.include_router(pages_analytics.router)
