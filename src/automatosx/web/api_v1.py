"""`/api/v1`: the JSON API (SPEC section 10). Each body is the CLI's `--format json`
document for the same question, built by the same view; each command is the function the
CLI's command calls. IDs may be unique prefixes of 8+ characters.

Lists that can grow without bound page by cursor: the body stays the CLI's list, and the
next page's URL is in a `Link: <...>; rel="next"` header (as GitHub's API does), so a
client that ignores paging still reads valid documents.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from automatosx.views.approvals import pending_document
from automatosx.views.documents import (
    checkpoint_document,
    event_document,
    run_document,
    workflow_document,
)
from automatosx.views.execution import execution_document, step_output
from automatosx.views.graph import execution_graph_document
from automatosx.views.timestamps import parse_age
from automatosx.web import schemas
from automatosx.web.state import UiState, ui_state

PREFIX = "/api/v1"
MAX_PAGE = 1000
ExecutionState = Literal[
    "idle", "queued", "executing", "paused", "completed", "failed", "cancelled"
]
AGE = r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"  # what views.timestamps.parse_age reads

State = Annotated[UiState, Depends(ui_state)]
ExecutionId = Annotated[str, "an execution ID or a unique prefix of 8+ characters"]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad input (a malformed parameter or body).",
        401: "The server has a token and the request did not carry it.",
        403: "A change without a same-origin Origin (or the bearer token), or a read-only server.",
        404: "No such execution, workflow or step.",
        409: "The execution's state forbids it.",
    }
    return {code: {"model": schemas.ErrorBody, "description": text[code]} for code in codes}


READ_ERRORS = _errors(400, 401)
ONE_ERRORS = _errors(400, 401, 404)
CHANGE_ERRORS = _errors(400, 401, 403, 404, 409)

router = APIRouter(prefix=PREFIX, tags=["api"])


def _json(document: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(document, status_code=status_code, headers=headers)


def _next_link(request: Request, **changes: str | int) -> dict[str, str]:
    query = {**request.query_params, **{k: str(v) for k, v in changes.items()}}
    return {"Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"'}


@router.get("/workflows", responses={200: {"model": list[schemas.Workflow]}, **READ_ERRORS})
def list_workflows(
    ui: State, search: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    """Stored workflows with their record (`ax workflow list [--search]`)."""
    found = ui.store.list_workflows() if search is None else ui.store.search_workflows(search)
    return _json([workflow_document(w) for w in found])


@router.get("/executions", responses={200: {"model": list[schemas.Run]}, **_errors(400, 401, 404)})
def list_executions(
    request: Request,
    ui: State,
    workflow: Annotated[str | None, Query(max_length=500)] = None,
    state: Annotated[list[ExecutionState] | None, Query(max_length=7)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=100, description="From a Link header.")] = None,
) -> Response:
    """Recent executions, newest first (`ax workflow runs`); `state` may repeat."""
    if workflow is not None:
        ui.store.get_workflow(workflow)  # an unknown name is 404, not an empty list
    found = ui.store.list_executions(
        workflow_name=workflow, limit=limit, states=state, before=cursor
    )
    headers = _next_link(request, cursor=found[-1].id) if len(found) == limit else None
    return _json([run_document(e) for e in found], headers=headers)


@router.get("/executions/{id}", responses={200: {"model": schemas.Execution}, **ONE_ERRORS})
def get_execution(ui: State, id: ExecutionId) -> Response:
    """One execution (`ax workflow status`)."""
    return _json(execution_document(ui.store, ui.store.get_execution(id)))


@router.get(
    "/executions/{id}/events", responses={200: {"model": list[schemas.Event]}, **ONE_ERRORS}
)
def list_events(
    request: Request,
    ui: State,
    id: ExecutionId,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    type: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> Response:
    """The audit log after event `after`, in order (`ax workflow events`); `type` keeps
    only events of those types (it may repeat)."""
    execution = ui.store.get_execution(id)
    found = ui.store.list_events(execution.id, after_id=after, limit=limit)
    headers = _next_link(request, after=found[-1].id) if len(found) == limit else None
    kept = found if not type else [e for e in found if e.type in type]
    return _json([event_document(e) for e in kept], headers=headers)


@router.get(
    "/executions/{id}/checkpoints",
    responses={200: {"model": list[schemas.Checkpoint]}, **ONE_ERRORS},
)
def list_checkpoints(
    ui: State, id: ExecutionId, limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None
) -> Response:
    """Its checkpoints, newest first (`ax workflow checkpoints`)."""
    execution = ui.store.get_execution(id)
    found = ui.store.list_checkpoints(execution.id, limit=limit)
    return _json([checkpoint_document(c) for c in found])


@router.get("/executions/{id}/graph", responses={200: {"model": schemas.Graph}, **ONE_ERRORS})
def get_graph(ui: State, id: ExecutionId) -> Response:
    """The DAG it runs, with each step's state and level."""
    return _json(execution_graph_document(ui.store, ui.store.get_execution(id)))


@router.get(
    "/executions/{id}/steps/{key}/output",
    responses={200: {"description": "The step's output, whole."}, **_errors(400, 401, 404, 409)},
)
def get_output(ui: State, id: ExecutionId, key: str) -> Response:
    """One completed step's whole output (`ax workflow output --format json`): the page
    shows long outputs cut, with a link here."""
    return _json(step_output(ui.store, ui.store.get_execution(id), key))


@router.get(
    "/executions/{id}/steps/{key}/attempts",
    responses={200: {"model": list[schemas.Attempt]}, **ONE_ERRORS},
)
def list_attempts(ui: State, id: ExecutionId, key: str) -> Response:
    """Every attempt of one step instance (`review` or `review[3]`): its rendered prompt,
    output, error, times, tokens and cost (secrets masked)."""
    from automatosx.views.attempts import attempts_document

    return _json(attempts_document(ui.store, ui.store.get_execution(id), key))


@router.get("/stats", responses={200: {"model": schemas.Stats}, **_errors(400, 401, 404)})
def get_stats(
    ui: State,
    since: Annotated[
        str, Query(max_length=20, pattern=AGE, description="An age: 30s, 15m, 12h, 7d, 2w.")
    ] = "7d",
    workflow: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Analytics over the executions started since then (`ax workflow stats`)."""
    from automatosx.views.stats import stats_document

    start = time.time() - parse_age(since)
    return _json(stats_document(ui.store, since=start, workflow=workflow))


@router.get("/pending", responses={200: {"model": list[schemas.Pending]}, **READ_ERRORS})
def list_pending(ui: State) -> Response:
    """Approval steps waiting for a decision (`ax workflow pending`)."""
    return _json([pending_document(p) for p in ui.store.pending_approvals()])


# ---- commands ----


def _accepted(execution_id: str, state: str) -> Response:
    return _json({"executionId": execution_id, "state": state}, status_code=202)


ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": schemas.Accepted, "description": "Asked; the state it is in now."}
}


@router.post("/executions/{id}/pause", status_code=202, responses={**ACCEPTED, **CHANGE_ERRORS})
def pause(ui: State, id: ExecutionId) -> Response:
    """`ax workflow pause`: running steps finish, nothing new starts."""
    from automatosx.runtime.control import pause_execution

    execution = pause_execution(ui.store, id)
    return _accepted(execution.id, execution.state)


@router.post("/executions/{id}/resume", status_code=202, responses={**ACCEPTED, **CHANGE_ERRORS})
def resume(ui: State, id: ExecutionId) -> Response:
    """`ax workflow resume`: this server takes the execution over and runs the rest."""
    execution_id = ui.runners.resume(id)
    return _accepted(execution_id, ui.store.get_execution(execution_id).state)


@router.post("/executions/{id}/cancel", status_code=202, responses={**ACCEPTED, **CHANGE_ERRORS})
def cancel(ui: State, id: ExecutionId) -> Response:
    """`ax workflow cancel`: running steps are killed."""
    from automatosx.runtime.control import cancel_execution

    execution = cancel_execution(ui.store, id, wait_s=0.0)
    return _accepted(execution.id, execution.state)


@router.post(
    "/executions/{id}/steps/{key}/approve",
    status_code=202,
    responses={**ACCEPTED, **CHANGE_ERRORS},
)
def approve(ui: State, id: ExecutionId, key: str, body: schemas.Decision | None = None) -> Response:
    """`ax workflow approve`: the gate completes and its dependents run."""
    return _decide(ui, id, key, "approved", body)


@router.post(
    "/executions/{id}/steps/{key}/reject",
    status_code=202,
    responses={**ACCEPTED, **CHANGE_ERRORS},
)
def reject(ui: State, id: ExecutionId, key: str, body: schemas.Decision | None = None) -> Response:
    """`ax workflow reject`: the gate fails with kind `rejected`."""
    return _decide(ui, id, key, "rejected", body)


def _decide(
    ui: UiState, id: str, key: str, decision: str, body: schemas.Decision | None
) -> Response:
    from automatosx.api.client import decider
    from automatosx.runtime.approvals import decide

    given = body or schemas.Decision()
    execution, _ = decide(
        ui.store, id, key, "approved" if decision == "approved" else "rejected",
        by=given.by or decider(), comment=given.comment, now=time.time(),
    )  # fmt: skip
    return _accepted(execution.id, ui.store.get_execution(execution.id).state)
