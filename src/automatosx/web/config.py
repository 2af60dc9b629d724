"""What `ax ui` serves and to whom: the bind address, the token, read-only.

Loopback needs no token (only this machine's users reach it); any other address does, since
the dashboard can pause, cancel and approve. The allowed `Host` names are the bound address
and the loopback names (a DNS-rebinding page on some other name is refused), plus any the
operator names with `--allow-host` (the machine's DNS name, behind a token).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from automatosx.errors import AxError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class UiConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    read_only: bool = False
    allow_hosts: tuple[str, ...] = ()
    # Filled from the rest by `check`: the Host names requests may carry (no port).
    allowed_hosts: frozenset[str] = field(default=frozenset())

    def check(self) -> UiConfig:
        """The config with its allowed hosts, or an AxError saying what to change."""
        if not 0 <= self.port <= 65535:
            raise AxError(f"--port {self.port} is not a port number (0-65535)")
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise AxError(
                f"--token is too short: use at least {MIN_TOKEN_LENGTH} random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        if not is_loopback(self.host) and self.token is None:
            raise AxError(
                f"--host {self.host} is reachable from other machines: give --token TOKEN "
                "(every request must then carry it)"
            )
        names = {host_name(self.host), *LOOPBACK_NAMES, *(h.lower() for h in self.allow_hosts)}
        return UiConfig(
            self.host, self.port, self.token, self.read_only, self.allow_hosts, frozenset(names)
        )


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name in a `Host` header, without its port: `[::1]:8765` -> `[::1]`."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    if value.count(":") > 1:  # a bare IPv6 address (a bind address, never a Host header)
        return f"[{value}]"
    return value
