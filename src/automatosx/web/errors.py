"""The HTTP status of each project error, for the API's JSON and the pages' error page
alike: an unknown ID is 404, a state that forbids the command 409, an unreachable
database 503, any other bad input 400 (the CLI's exit 2)."""

from __future__ import annotations

from automatosx.errors import (
    AxError,
    LeaseLostError,
    NotFoundError,
    StateConflictError,
    StoreUnavailableError,
)


def status_of(exc: AxError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StateConflictError | LeaseLostError):
        return 409
    if isinstance(exc, StoreUnavailableError):
        return 503
    return 400
