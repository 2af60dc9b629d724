"""What the HTTP providers share: one pooled client per event loop, and HTTP failures
mapped to the contract's error kinds.

One `httpx.AsyncClient` per event loop (not per call) keeps connections alive across steps
and bounds how many sockets a run opens: a workflow with hundreds of parallel steps reuses
a pool instead of paying a TCP (and TLS) handshake per call. The pool is per loop because
an AsyncClient's connections belong to the loop that opened them.

Error messages carry the status and the server's own message, never request headers, and
are passed through `redact` so a key a server echoes back does not leak.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import weakref
from collections.abc import Iterable

import httpx

from automatosx.agents.secrets import redact
from automatosx.errors import ErrorKind, StepError

POOL_LIMITS = httpx.Limits(
    max_connections=1024, max_keepalive_connections=256, keepalive_expiry=30.0
)
CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 600.0
_MESSAGE_LIMIT = 400
_RETRY_HINT_KINDS = frozenset({"rate_limit", "provider_unavailable"})

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    """The running loop's pooled client, created on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(limits=POOL_LIMITS, timeout=request_timeout(None))
        _clients[loop] = client
    return client


async def close_shared_client() -> None:
    """Close the running loop's client (call before the loop ends to free sockets)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def request_timeout(timeout_s: float | None) -> httpx.Timeout:
    """Connect fast or fail over; wait for tokens as long as the step allows."""
    read = timeout_s if timeout_s is not None else DEFAULT_READ_TIMEOUT_S
    return httpx.Timeout(connect=min(CONNECT_TIMEOUT_S, read), read=read, write=read, pool=read)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, `retry-after` as seconds, or `retry-after` as an HTTP date."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(body: bytes) -> str:
    """The `error.message` of a JSON error body (OpenAI, Anthropic, Gemini), else the text."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:_MESSAGE_LIMIT]
    if isinstance(data, list) and data:  # Gemini sometimes wraps errors in a list
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:_MESSAGE_LIMIT]
        if isinstance(error, str):
            return error[:_MESSAGE_LIMIT]
    return text.strip()[:_MESSAGE_LIMIT]


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


def status_error(
    provider: str, status: int, headers: httpx.Headers, body: bytes, secrets: Iterable[str]
) -> StepError:
    """A non-2xx answer as a StepError of the right kind, with the server's retry hint."""
    message = redact(f"{provider}: HTTP {status}: {server_message(body)}", list(secrets))
    kind = kind_for_status(status)
    retry_after = retry_after_seconds(headers) if kind in _RETRY_HINT_KINDS else None
    return StepError(kind, message, retry_after_s=retry_after)


def transport_error(provider: str, url: str, exc: httpx.HTTPError) -> StepError:
    """A failure below HTTP: no connection, a timeout, a broken stream."""
    where = f"{provider}: {url}"
    if isinstance(exc, httpx.TimeoutException):
        return StepError("timeout", f"{where}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.NetworkError):
        return StepError("provider_unavailable", f"{where}: {type(exc).__name__}: {exc}")
    return StepError("provider_error", f"{where}: {type(exc).__name__}: {exc}")
