"""What an HTTP status means as a contract error kind.

Its own module, without httpx: the vendor CLIs report their API's status too, and a run
whose agents are all CLIs or commands must not import an HTTP client (~50 ms of start-up).
"""

from __future__ import annotations

from automatosx.errors import ErrorKind


def kind_for_status(status: int) -> ErrorKind:
    """The error kind an HTTP status means, for HTTP providers and for the CLIs that report
    their API's status (429 -> rate_limit, 401/403 -> auth_error, overload -> unavailable)."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth_error"
    if status == 408:
        return "timeout"
    if status in (502, 503, 504, 529):  # 529: Anthropic "overloaded"
        return "provider_unavailable"
    return "provider_error"
