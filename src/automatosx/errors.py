"""The project's error types, shared by every room.

The CLI turns any `AxError` into one `error:` line with exit code 2; `StepError` is how a
provider (or a user's `python` callable) tells the engine *why* a step attempt failed, using
the error kinds of the contract so retry filters can match on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

ErrorKind = Literal[
    "timeout",
    "rate_limit",
    "provider_unavailable",
    "provider_error",
    "auth_error",
    "invalid_output",
    "template_error",
    "expression_error",
    "subworkflow_failed",
    "rejected",
    "cancelled",
    "worker_lost",
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class AxError(Exception):
    """A user-facing failure: bad input, unknown ID, a state that forbids the command."""

    exit_code = 2

    def lines(self) -> list[str]:
        """The error as people see it: one `error:` line each (most errors have one)."""
        return [" ".join(str(self).split())]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a workflow file: where it is (`steps[1].agent`) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class WorkflowValidationError(AxError):
    """Every problem found in a workflow file, reported together rather than one at a time."""

    def __init__(self, issues: list[ValidationIssue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f"{source}: " if source else ""
        if len(issues) == 1:
            text = f"{where}{issues[0]}"
        else:
            text = f"{where}{len(issues)} problems: " + "; ".join(str(i) for i in issues)
        super().__init__(text)

    @property
    def problems(self) -> list[dict[str, str]]:
        """Every problem as `{"path": ..., "message": ...}` (`path` such as `steps[1].agent`;
        empty for the document as a whole), in the order found."""
        return [{"path": issue.path, "message": issue.message} for issue in self.issues]

    def lines(self) -> list[str]:
        """One line per problem, each naming the file, whichever command loaded it."""
        where = f"{self.source}: " if self.source else ""
        return [f"{where}{' '.join(str(issue).split())}" for issue in self.issues]


class NotFoundError(AxError):
    """An ID, name or file that does not exist (or an ambiguous ID prefix)."""


class StateConflictError(AxError):
    """The execution's state forbids the command (resume a completed run, and so on)."""


class LeaseLostError(AxError):
    """A runner's lease was taken over: its writes are refused and it must stop (fencing)."""


class StoreUnavailableError(AxError):
    """The store could not be reached (a PostgreSQL restart, a dropped connection). Whether
    the interrupted call took effect is unknown; the store facade retries it."""


class StoreFullError(AxError):
    """The database's disk is full: the write was rolled back and the store is intact."""

    exit_code = 1


class StepError(Exception):
    """A step attempt failed with a contract error kind (`timeout`, `rate_limit`, ...).

    Raise it from a `python` provider callable to choose the kind; any other exception is
    recorded as `provider_error`.
    """

    def __init__(self, kind: ErrorKind, message: str, *, retry_after_s: float | None = None):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}; expected one of {ERROR_KINDS}")
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
