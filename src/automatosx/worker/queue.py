"""The job queue: a procrastinate app on the store's PostgreSQL database and schema.

Procrastinate's tables live beside the store's (the same `?schema=`), so the store defers a
job in its own transactions (`store.queue_jobs`). Its schema is created the first time a
worker or `submit` needs it, under an advisory lock (two workers starting together create
it once). The procrastinate version is pinned to a minor range: a newer release may
migrate its tables (`procrastinate schema --migrate`, see docs/workers.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from automatosx.errors import AxError
from automatosx.store.postgres_connect import configure, connection_settings
from automatosx.store.queue_jobs import NEEDS_POSTGRES

if TYPE_CHECKING:
    import procrastinate

    from automatosx.store.base import Store
    from automatosx.store.postgres import PostgresStore

# pg_advisory_lock key: "ax queue" in ASCII, one installation-wide number
_SCHEMA_LOCK = 0x61782071756575


def ensure_job_queue(store: Store) -> PostgresStore:
    """The store, if it can hold the queue (PostgreSQL; else AxError), with procrastinate's
    schema in the store's schema, created if it is not there yet."""
    from procrastinate.schema import SchemaManager

    from automatosx.store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        raise AxError(NEEDS_POSTGRES)
    try:
        with psycopg.connect(store.conninfo, autocommit=True, connect_timeout=10) as conn:
            configure(conn, store.schema)
            conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
                if row is None or row[0] is None:
                    with conn.transaction():
                        conn.execute(SchemaManager.get_schema())
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    except psycopg.OperationalError as exc:
        message = " ".join(str(exc).split())
        raise AxError(f"cannot connect to PostgreSQL: {message}") from exc
    return store


def job_queue_app(store: PostgresStore, *, connections: int) -> procrastinate.App:
    """A procrastinate app whose connections (at most `connections`, one of them held for
    LISTEN) use the store's schema; not yet open."""
    import procrastinate

    kwargs: dict[str, Any] = connection_settings(store.conninfo)
    if store.schema:
        kwargs["options"] = f"-c search_path={store.schema}"
    connector = procrastinate.PsycopgConnector(
        conninfo=store.conninfo, kwargs=kwargs, min_size=1, max_size=connections
    )
    return procrastinate.App(connector=connector)


def registered_workers(store: Store) -> int:
    """How many worker loops (a drive loop and an attempt loop per `ax worker`) have told
    the queue they are alive; 0 before any worker created the queue's tables."""
    fetch = store._fetch_all  # type: ignore[attr-defined]
    if fetch("SELECT to_regclass('procrastinate_workers')")[0][0] is None:
        return 0
    return int(fetch("SELECT COUNT(*) FROM procrastinate_workers")[0][0])
