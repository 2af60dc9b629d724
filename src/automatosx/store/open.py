"""Choosing and opening the store from `AX_DB` (SPEC section 6).

`AX_DB` unset: `.automatosx/ax.db` under the working directory. A `postgresql://` (or
`postgres://`) URL selects PostgreSQL; a SQLite file is a path (`sqlite:///rel.db`,
`sqlite:////abs.db` and `:memory:` accepted); any other `scheme://` is an error
(`automatosx.settings` reads and checks the variables). `AX_DB_SYNC=full` asks SQLite for
fsync-per-commit durability.

A command that only reads opens the store with `create=False`: a SQLite file that does not
exist is not created (nor its folder); an empty in-memory store stands in, so the reader
answers as for a new database (empty lists, unknown IDs) and leaves no file behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from automatosx.secrets import SecretRedactor
from automatosx.settings import database_location, db_sync, is_postgres_url
from automatosx.store.base import Store


def resolve_location(url: str | None = None) -> str:
    """The database location `open_store` would use (for messages and diagnostics)."""
    return database_location(url)


def open_store(
    url: str | None = None,
    *,
    synchronous: str | None = None,
    redactor: SecretRedactor | None = None,
    create: bool = True,
) -> Store:
    """Opens (creating and migrating if needed) the store at `url`, default from `AX_DB`.

    `synchronous` ("normal" or "full", SQLite only) defaults to `AX_DB_SYNC`, else "normal".
    `redactor` defaults to one built from the current environment's secret variables.
    `create=False`: a missing SQLite file is not created; an empty in-memory store is
    returned instead (see the module docstring).
    """
    location = resolve_location(url)
    if is_postgres_url(location):
        from automatosx.store.postgres import PostgresStore

        return PostgresStore(location, redactor=redactor)
    from automatosx.store.sqlite import SqliteStore

    sync = (synchronous or db_sync() or "normal").strip().lower()
    if not create and location != ":memory:" and not os.path.lexists(location):
        return SqliteStore(":memory:", synchronous=sync, redactor=redactor)
    return SqliteStore(location, synchronous=sync, redactor=redactor)


@contextmanager
def opened_store(url: str | None = None, *, create: bool = True) -> Iterator[Store]:
    """`open_store` for a `with` block: the store is closed however the block ends."""
    store = open_store(url, create=create)
    try:
        yield store
    finally:
        store.close()
