"""Choosing and opening the store from `AX_DB` (SPEC section 6).

`AX_DB` unset: `.automatosx/ax.db` under the working directory. A `postgresql://` (or
`postgres://`) URL selects PostgreSQL; anything else is a SQLite file path (`sqlite:///rel.db`,
`sqlite:////abs.db` and `:memory:` accepted). `AX_DB_SYNC=full` asks SQLite for
fsync-per-commit durability.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automatosx.secrets import SecretRedactor
from automatosx.store.base import Store

DEFAULT_DB = Path(".automatosx") / "ax.db"


def resolve_location(url: str | None = None) -> str:
    """The database location `open_store` would use (for messages and diagnostics)."""
    location = url if url is not None else os.environ.get("AX_DB", "").strip()
    if not location:
        return str(Path.cwd() / DEFAULT_DB)
    if location.startswith("sqlite:///"):  # SQLAlchemy style: 3 slashes relative, 4 absolute
        return location[len("sqlite:///") :]
    if location.startswith("sqlite://"):
        return location[len("sqlite://") :]
    return location


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_store(
    url: str | None = None,
    *,
    synchronous: str | None = None,
    redactor: SecretRedactor | None = None,
) -> Store:
    """Opens (creating and migrating if needed) the store at `url`, default from `AX_DB`.

    `synchronous` ("normal" or "full", SQLite only) defaults to `AX_DB_SYNC`, else "normal".
    `redactor` defaults to one built from the current environment's secret variables.
    """
    location = resolve_location(url)
    if is_postgres_url(location):
        from automatosx.store.postgres import PostgresStore

        return PostgresStore(location, redactor=redactor)
    from automatosx.store.sqlite import SqliteStore

    sync = (synchronous or os.environ.get("AX_DB_SYNC", "") or "normal").strip().lower()
    return SqliteStore(location, synchronous=sync, redactor=redactor)


@contextmanager
def opened_store(url: str | None = None) -> Iterator[Store]:
    """`open_store` for a `with` block: the store is closed however the block ends."""
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()
