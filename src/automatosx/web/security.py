"""The rules every request passes before any route sees it (SPEC section 10).

- `Host` must be the bound address, a loopback name or an `--allow-host` name: a page on
  an attacker's domain that rebinds its DNS to 127.0.0.1 sends its own name, and gets 400.
- With a token, each request carries it: `Authorization: Bearer TOKEN`, or the cookie set
  when a browser first opened a URL with `?token=TOKEN` (the redirect drops it from the
  address bar and the history).
- Mutations are POST only. A POST needs a same-origin `Origin` (a browser always sends it;
  a cross-site form or fetch cannot forge it) or the bearer token (which a browser never
  attaches by itself); `--read-only` refuses every POST.
- Every response carries a strict Content-Security-Policy (scripts and styles from this
  server only, no inline script, no framing) and `nosniff`, so a step output holding
  `<script>` stays text even if some view forgot to escape it.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it wraps the event
streams without buffering them.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from automatosx.web.config import UiConfig, host_name

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "ax_token"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
SAFE_METHODS = frozenset({"GET", "HEAD"})  # where a browser may bring `?token=`


class Guard:
    """Wraps the application: refuses what the rules above refuse, adds the headers."""

    def __init__(self, app: ASGIApp, config: UiConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            await _respond(scope, send, status, message, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        host = headers.get("host", "")
        if not host or host_name(host) not in self.config.allowed_hosts:
            return 400, "the Host header names no address this server answers on", []
        method = scope["method"]
        bearer = self._bearer_is_valid(headers)
        if self.config.token is not None and not bearer:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and method in SAFE_METHODS and self._matches(given):
                return _redirect_setting_cookie(scope, given, query)
            if not self._matches(_cookie(headers)):
                return 401, "this server needs its token: Authorization: Bearer TOKEN", []
        if method != "POST":
            # GET and HEAD change nothing; no route takes any other method, so the router
            # answers those 405 with the path's `Allow` header.
            return None
        if self.config.read_only:
            return 403, "this server is read-only (ax ui --read-only)", []
        if not bearer and not _same_origin(headers, scope):
            return 403, "a change needs a same-origin Origin header (or the bearer token)", []
        return None

    def _bearer_is_valid(self, headers: dict[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self._matches(value.strip())

    def _matches(self, given: str | None) -> bool:
        token = self.config.token
        if token is None or not given:
            return False
        return hmac.compare_digest(given.encode(), token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header carries no token
        return None
    morsel = jar.get(TOKEN_COOKIE)
    return None if morsel is None else morsel.value


def _same_origin(headers: dict[str, str], scope: Scope) -> bool:
    origin = headers.get("origin")
    if not origin:
        return False
    scheme = scope.get("scheme", "http")
    return origin.lower() == f"{scheme}://{headers.get('host', '')}".lower()


def _redirect_setting_cookie(
    scope: Scope, token: str, query: dict[str, str]
) -> tuple[int, str, list[tuple[bytes, bytes]]]:
    rest = urlencode({k: v for k, v in query.items() if k != "token"})
    location = scope.get("path", "/") + (f"?{rest}" if rest else "")
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    return (
        303,
        "token accepted",
        [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
    )


async def _respond(
    scope: Scope, send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
