"""The `AX_*` settings from the environment, read and checked in one place (SPEC section 7).

A setting that is set but unusable is an error that names it, never a silent default:
`AX_DB=mysql://x` once became a SQLite file `x` in a new folder `mysql:`, and
`AX_LEASE_SECONDS=abc` a 30 s lease nobody asked for. The CLI calls `check_settings` before
any command runs, so a typo is one `error:` line and exit 2 whichever command meets it; the
accessors check again where the library reads them (the Python API has no CLI in front).

An empty or blank value counts as unset. Each accessor returns None for "unset" and leaves
the default to the module that knows why it is what it is.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from automatosx.errors import AxError

DEFAULT_DB = Path(".automatosx") / "ax.db"
POSTGRES_SCHEMES = ("postgresql", "postgres")
DB_SYNC_MODES = ("normal", "full")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DB_FORMS = (
    "use a file path, sqlite:///relative.db, sqlite:////absolute.db, :memory: "
    "or a postgresql:// URL"
)


class SettingError(AxError):
    """An `AX_*` variable set to a value it cannot have."""


def _raw(name: str, environ: Mapping[str, str] | None) -> str:
    return (os.environ if environ is None else environ).get(name, "").strip()


def database_location(value: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Where the store is: `value`, else `AX_DB`, else `.automatosx/ax.db` under the
    working directory. The answer is `:memory:`, a PostgreSQL URL, or a SQLite file path
    (`sqlite:///rel.db` is `rel.db`, `sqlite:////abs.db` is `/abs.db`). Any other
    `scheme://` is refused; the message names the scheme only, since the rest of a URL may
    hold a password."""
    name = "AX_DB" if value is None else "the database location"
    raw = _raw("AX_DB", environ) if value is None else value.strip()
    if not raw:
        return str(Path.cwd() / DEFAULT_DB)
    match = _SCHEME.match(raw)
    if match is None:
        return raw  # a file path, or :memory:
    scheme = match.group(1)
    if scheme in POSTGRES_SCHEMES:
        return raw
    if scheme.lower() == "sqlite":
        rest = raw[match.end() :]
        path = rest[1:] if rest.startswith("/") else rest  # SQLAlchemy's 3 or 4 slashes
        if not path:
            raise SettingError(f"{name} {raw!r} names no database file: {_DB_FORMS}")
        return path
    raise SettingError(f"{name} has an unknown database scheme '{scheme}://': {_DB_FORMS}")


def is_postgres_url(location: str) -> bool:
    return location.startswith(tuple(f"{scheme}://" for scheme in POSTGRES_SCHEMES))


def db_sync(environ: Mapping[str, str] | None = None) -> str | None:
    """`AX_DB_SYNC`: "normal" or "full" (any case)."""
    raw = _raw("AX_DB_SYNC", environ)
    if not raw:
        return None
    if raw.lower() not in DB_SYNC_MODES:
        raise SettingError(f"AX_DB_SYNC must be normal or full, got {raw!r}")
    return raw.lower()


def lease_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """`AX_LEASE_SECONDS`: a positive number of seconds (fractions allowed: tests use ~1 s)."""
    return _positive_seconds("AX_LEASE_SECONDS", environ)


def _positive_seconds(name: str, environ: Mapping[str, str] | None) -> float | None:
    raw = _raw(name, environ)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SettingError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


DEFAULT_WORKER_HEARTBEAT_S = 10.0


def worker_heartbeat_s(environ: Mapping[str, str] | None = None) -> float:
    """`AX_WORKER_HEARTBEAT_S`: how often an `ax worker` tells the queue it is alive
    (default 10 s); one silent for 3 heartbeats is presumed dead and its jobs run again
    elsewhere."""
    return _positive_seconds("AX_WORKER_HEARTBEAT_S", environ) or DEFAULT_WORKER_HEARTBEAT_S


def provider_limits(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """`AX_PROVIDER_LIMITS`: at most this many calls at once to a provider across all
    `ax worker` processes, as `claude-code=4,openai=16` (unlisted providers: no limit).
    Every worker should be given the same value."""
    raw = _raw("AX_PROVIDER_LIMITS", environ)
    limits: dict[str, int] = {}
    if not raw:
        return limits
    for entry in raw.split(","):
        name, sep, count = (part.strip() for part in entry.partition("="))
        if not (sep and name and count.isascii() and count.isdigit() and int(count) > 0):
            raise SettingError(
                "AX_PROVIDER_LIMITS must be PROVIDER=N pairs separated by commas, such as "
                f"claude-code=4,openai=16; got {entry.strip()!r}"
            )
        limits[name] = int(count)
    return limits


def local_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """`AX_LOCAL_THREADS`: CPU threads for the embedded model."""
    return _positive_int("AX_LOCAL_THREADS", environ)


def http_max_in_flight(environ: Mapping[str, str] | None = None) -> int | None:
    """`AX_HTTP_MAX_IN_FLIGHT`: HTTP provider calls in flight per process."""
    return _positive_int("AX_HTTP_MAX_IN_FLIGHT", environ)


def _positive_int(name: str, environ: Mapping[str, str] | None) -> int | None:
    raw = _raw(name, environ)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
        raise SettingError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


MAX_USER_LENGTH = 200


def user(environ: Mapping[str, str] | None = None) -> str | None:
    """`AX_USER`: who `ax workflow approve` / `reject` record as the decider (unset: the
    login name). It is shown in tables and stored in the audit log, so it must be one
    printable line of at most 200 characters."""
    raw = _raw("AX_USER", environ)
    if not raw:
        return None
    if not raw.isprintable() or len(raw) > MAX_USER_LENGTH:
        raise SettingError(
            f"AX_USER must be one printable line of at most {MAX_USER_LENGTH} characters"
        )
    return raw


OTEL_EXTRA_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def otel_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """`AX_OTEL_ENDPOINT`: the OTLP/HTTP receiver each ended execution is sent to as a
    trace (`automatosx.telemetry`), an http:// or https:// URL whose `/v1/traces` takes
    the spans. Being set needs the `otel` extra installed: a run that could not send its
    trace is refused before it starts, rather than found out when it ends. The value is
    not repeated in the message (a URL may carry a password)."""
    raw = _raw("AX_OTEL_ENDPOINT", environ)
    if not raw:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number
        parts, port_ok = urlsplit(""), False
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise SettingError(
            "AX_OTEL_ENDPOINT must be an http:// or https:// URL of an OTLP/HTTP receiver, "
            "such as http://127.0.0.1:4318"
        )
    if not all(_importable(module) for module in OTEL_EXTRA_MODULES):
        raise SettingError(
            "AX_OTEL_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'automatosx[otel]'"
        )
    return raw


def _importable(module: str) -> bool:
    """Whether `module` is installed, found without importing it (the SDK costs ~100 ms)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # its parent package is missing, or half there
        return False


_CHECKS: tuple[Callable[[Mapping[str, str] | None], object], ...] = (
    lambda environ: database_location(None, environ),
    db_sync,
    lease_seconds,
    worker_heartbeat_s,
    provider_limits,
    local_threads,
    http_max_in_flight,
    user,
    otel_endpoint,
)


def check_settings(environ: Mapping[str, str] | None = None) -> None:
    """Every setting at once: one error listing each bad one, or nothing."""
    problems = []
    for check in _CHECKS:
        try:
            check(environ)
        except SettingError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingError("; ".join(problems))
