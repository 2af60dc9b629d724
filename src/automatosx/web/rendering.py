"""The pages' Jinja2 environment and the one way a page is answered.

Autoescaping is on for every template whatever its name, so text from agents and files
(outputs, prompts, errors, step keys) is shown and never run; the CSP behind it
(`web.security`) forbids inline script and style, so templates carry neither. A page that
fails with an AxError is answered by the error page with the API's status (404 for an
unknown ID, 400 for bad input), never by a JSON body or a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from automatosx.errors import AxError
from automatosx.web.errors import status_of
from automatosx.web.formatting import FILTERS

_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every page, whatever its file name: agent text stays text
    undefined=StrictUndefined,  # a misspelt name fails the tests instead of printing ""
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(FILTERS)


def link(base: str, query: dict[str, str], **changes: str | int | None) -> str:
    """`base` with its `query` changed (a None value drops the key): how one view of a page
    links to another (another step, filter or page) keeping the rest of its state."""
    merged = dict(query)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return base + (f"?{urlencode(merged)}" if merged else "")


_environment.globals["link"] = link
templates = Jinja2Templates(env=_environment)

P = ParamSpec("P")


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    return response


def error_page(request: Request, exc: AxError) -> HTMLResponse:
    status = status_of(exc)
    message = " ".join(str(exc).split())
    return render(request, "error.html", status_code=status, status=status, message=message)


def page(handler: Callable[P, HTMLResponse]) -> Callable[P, HTMLResponse]:
    """A page handler whose AxError becomes the error page (the request is its first
    argument, as FastAPI passes it by name)."""

    @wraps(handler)
    def answer(*args: P.args, **kwargs: P.kwargs) -> HTMLResponse:
        try:
            return handler(*args, **kwargs)
        except AxError as exc:
            request = kwargs.get("request")
            assert isinstance(request, Request)
            return error_page(request, exc)

    return answer
