"""What the HTTP providers share: pooled clients per event loop, and HTTP failures mapped
to the contract's error kinds.

Clients are shared per event loop (not made per call) so connections stay alive across
steps and a workflow with hundreds of parallel steps reuses sockets instead of paying a
TCP (and TLS) handshake per call; per loop because a client's connections belong to the
loop that opened them. Three measured costs shape the rest (500 concurrent calls against a
loopback server answering all of them after 0.25 s, sampling the loop's lateness every
millisecond; without these measures the loop lagged 350 ms):
- every in-flight call costs about 2 ms of httpx/httpcore work, and answers that arrive
  together are processed in one loop iteration, so at most `MAX_IN_FLIGHT` calls per loop
  are in flight (64 by default, `AX_HTTP_MAX_IN_FLIGHT` to change). The router runs these
  calls on its own I/O loop thread (`agents/io_loop.py`), where this work still competes for
  the GIL with the engine's loop: measured with both, the engine's loop lagged 43-47 ms at
  most (p99 12-13 ms) with 64 in flight, 55-60 ms with 128, 89 ms with no bound, at the
  price of queueing calls beyond that many (180 vs 350 calls/s against that server);
- httpcore's pool scans every connection each time a request is queued or finishes (O(N^2)
  in concurrent calls): a loop's calls are spread over `POOL_SHARDS` clients, round robin;
- the first request on a loop would load the TLS trust store and import httpcore's
  protocol modules (tens of milliseconds, all of it blocking the loop): that warm-up runs
  once per process in a worker thread instead.

Error messages carry the status and the server's own message, never request headers, and
are passed through `redact` so a key a server echoes back does not leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import itertools
import json
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx

from automatosx import settings
from automatosx.agents.providers.http_status import kind_for_status
from automatosx.errors import StepError
from automatosx.secrets import redact

POOL_SHARDS = 4
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)


def _max_in_flight() -> int:
    return settings.http_max_in_flight() or 64


CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 600.0
_MESSAGE_LIMIT = 400
_RETRY_HINT_KINDS = frozenset({"rate_limit", "provider_unavailable"})


@dataclass
class _LoopClients:
    clients: list[httpx.AsyncClient]
    turn: itertools.count[int]
    slots: asyncio.Semaphore


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)
_warming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[ssl.SSLContext]] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def _warm_up() -> ssl.SSLContext:
    """Once per process, off the loop: the TLS context and httpcore's lazy imports."""
    import anyio._backends._asyncio  # noqa: F401
    import h11  # noqa: F401
    import httpcore._async.http11  # noqa: F401

    return httpx.create_ssl_context()


@contextlib.asynccontextmanager
async def pooled_client() -> AsyncIterator[httpx.AsyncClient]:
    """One of the running loop's clients (created on first use), held for one call; waits
    while `MAX_IN_FLIGHT` calls are already running on this loop."""
    pool = await _loop_pool()
    async with pool.slots:
        yield pool.clients[next(pool.turn) % len(pool.clients)]


async def _loop_pool() -> _LoopClients:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is not None:
        return pool
    warming = _warming.get(loop)
    if warming is None:
        warming = _warming[loop] = asyncio.ensure_future(asyncio.to_thread(_warm_up))
    context = await asyncio.shield(warming)
    pool = _pools.get(loop)
    if pool is None:
        clients = [
            httpx.AsyncClient(limits=POOL_LIMITS, timeout=request_timeout(None), verify=context)
            for _ in range(POOL_SHARDS)
        ]
        pool = _pools[loop] = _LoopClients(
            clients, itertools.count(), asyncio.Semaphore(_max_in_flight())
        )
    return pool


async def close_shared_client() -> None:
    """Close the running loop's clients (call before the loop ends to free sockets)."""
    loop = asyncio.get_running_loop()
    _warming.pop(loop, None)
    pool = _pools.pop(loop, None)
    if pool is not None:
        await asyncio.gather(*(client.aclose() for client in pool.clients))


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
