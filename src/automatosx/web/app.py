"""The ASGI application behind `ax ui`: the JSON API, the stream, the pages, the guard.

One store is opened for the server's life and shared by every request (the SQLite store
serializes its one connection; the PostgreSQL store has a pool). Errors are the CLI's, as
HTTP: an unknown ID is 404, a state that forbids the command 409, bad input 400, each with
`{"error": "..."}`; nothing answers with a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from automatosx.errors import AxError
from automatosx.store.base import Store
from automatosx.web import api_v1, pages, stream
from automatosx.web.config import UiConfig
from automatosx.web.errors import status_of
from automatosx.web.event_feed import EventFeed
from automatosx.web.runners import BackgroundRunners
from automatosx.web.security import Guard
from automatosx.web.state import UiState

STATIC = Path(__file__).parent / "static"


def create_app(store: Store, config: UiConfig) -> Guard:
    """The application over an open `store` (the caller closes it after the server
    stops), wrapped in the request guard (`web.security`)."""
    checked = config.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: UiState = app.state.ui
        try:
            yield
        finally:
            await state.feed.close()
            state.runners.stop()

    app = FastAPI(
        title="AutomatosX",
        summary="Executions of AutomatosX workflows: read them, follow them, steer them.",
        version=_version(),
        openapi_url=f"{api_v1.PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from a CDN: neither the CSP nor offline allow it
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ui = UiState(store, checked, EventFeed(store), BackgroundRunners(store))
    app.include_router(api_v1.router)
    app.include_router(stream.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    app.add_exception_handler(AxError, _ax_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(HTTPException, _http_error)
    return Guard(app, checked)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less the 422 it adds to every route with parameters: bad input
    here is a 400 with `{"error": ...}` (the CLI's exit 2), as each route documents."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


async def _ax_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AxError)
    return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status_of(exc))


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)


def _version() -> str:
    """The installed package's version (the package root is above this room)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("automatosx")
    except PackageNotFoundError:
        return "0"
